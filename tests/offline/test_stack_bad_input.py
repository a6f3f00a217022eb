"""Bad stack input fails with exit status 2, names the machine and the field, writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import EXAMPLE_STACK_FILE

from stackconfig.stackfile import SECURE_STAND_IN
from stubernetes.cli import EXIT_BAD_INPUT, main

Mutation = Callable[[dict[str, Any]], None]


def machine(values: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = values["machines"][name]
    return result


def set_field(name: str, field: str, value: object) -> Mutation:
    return lambda values: machine(values, name).__setitem__(field, value)


def add_controller(init: bool) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        machine(values, "c1")["init"] = True
        values["machines"]["c2"] = {
            "mac": "52:54:00:a1:00:09",
            "role": "controller",
            "installDisk": "/dev/sda",
            "init": init,
        }

    return mutate


def set_admin(field: str, value: object) -> Mutation:
    return lambda values: values["admin"].__setitem__(field, value)


def drop_admin_keys(values: dict[str, Any]) -> None:
    del values["admin"]["sshAuthorizedKeys"]


def no_controller(values: dict[str, Any]) -> None:
    machine(values, "c1")["role"] = "worker"


def set_cluster(field: str, value: object) -> Mutation:
    return lambda values: values["cluster"].__setitem__(field, value)


def set_gates(field: str, value: object) -> Mutation:
    return lambda values: values.__setitem__("gates", {field: value})


def set_label(key: str, value: object = "x") -> Mutation:
    return lambda values: machine(values, "w1").__setitem__("labels", {key: value})


def set_taint(**taint: object) -> Mutation:
    return set_field("w1", "taints", [{"key": "example.com/gpu", "effect": "NoSchedule", **taint}])


def set_bmc(**fields: object) -> Mutation:
    # The password a secret, as a stack gives it (a plain one is a defect of its own).
    bmc = {"kind": "ipmi", "address": "10.0.0.9", "user": "admin", "password": SECURE_STAND_IN}
    return set_field("w1", "bmc", {**bmc, **fields})


def second_controller_at(api_host: str) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        values["machines"]["c2"] = {
            "mac": "52:54:00:a1:00:09",
            "role": "controller",
            "installDisk": "/dev/sda",
            "address": "192.168.10.12/24",
            "gateway": "192.168.10.1",
            "dns": ["192.168.10.1"],
        }
        values["cluster"]["apiEndpoint"] = f"{api_host}:6443"

    return mutate


# (id, mutation, where, field, words the message must contain)
CASES: list[tuple[str, Mutation, str, str, str]] = [
    (
        "malformed-mac",
        set_field("w1", "mac", "52:54:00:zz:00:02"),
        "machine 'w1'",
        "mac",
        "malformed MAC",
    ),
    ("short-mac", set_field("w1", "mac", "52:54:00:a1:00"), "machine 'w1'", "mac", "malformed MAC"),
    (
        "duplicate-mac-other-case-and-separator",
        set_field("w2", "mac", "52-54-00-A1-00-02"),
        "machine 'w2'",
        "mac",
        "already used by machine 'w1'",
    ),
    (
        "name-not-rfc1123",
        lambda v: v["machines"].__setitem__(
            "Worker_3", dict(machine(v, "w2"), mac="52:54:00:a1:00:07")
        ),
        "machine 'Worker_3'",
        "name",
        "RFC 1123",
    ),
    ("no-controller", no_controller, "stubernetes:machines", "role", "no machine is a controller"),
    (
        "two-init-controllers",
        add_controller(True),
        "machine 'c2'",
        "init",
        "already the init controller",
    ),
    ("init-on-worker", set_field("w1", "init", True), "machine 'w1'", "init", "only a controller"),
    (
        "unknown-role",
        set_field("c1", "role", "master"),
        "machine 'c1'",
        "role",
        "'controller' or 'worker'",
    ),
    (
        "relative-install-disk",
        set_field("w1", "installDisk", "sda"),
        "machine 'w1'",
        "installDisk",
        "/dev/",
    ),
    ("missing-ssh-keys-key", drop_admin_keys, "stubernetes:admin", "sshAuthorizedKeys", "missing"),
    (
        "empty-ssh-keys",
        set_admin("sshAuthorizedKeys", []),
        "stubernetes:admin",
        "sshAuthorizedKeys",
        "at least 1",
    ),
    (
        "malformed-ssh-key",
        set_admin("sshAuthorizedKeys", ["ssh-ed25519 not*base64 me@host"]),
        "stubernetes:admin",
        "sshAuthorizedKeys[0]",
        "malformed SSH key",
    ),
    (
        "ssh-key-type-mismatch",
        set_admin(
            "sshAuthorizedKeys",
            ["ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOhYRPbAb7SWaP5VfwIC/ES69zmImWQcCGafKFioRwXN"],
        ),
        "stubernetes:admin",
        "sshAuthorizedKeys[0]",
        "does not hold a ssh-rsa key",
    ),
    (
        "malformed-address",
        set_field("w1", "address", "192.168.10.300/24"),
        "machine 'w1'",
        "address",
        "IPv4",
    ),
    (
        "address-without-prefix",
        set_field("w1", "address", "192.168.10.21"),
        "machine 'w1'",
        "address",
        "prefix length",
    ),
    (
        "gateway-outside-subnet",
        set_field("w1", "gateway", "10.0.0.1"),
        "machine 'w1'",
        "gateway",
        "outside",
    ),
    (
        "snippet-not-ignition",
        set_field("w1", "snippets", [{"storage": {"files": [{"path": "etc/motd", "mode": 420}]}}]),
        "machine 'w1'",
        "snippets[0].storage.files[0].path",
        "absolute",
    ),
    (
        "snippet-unknown-key",
        set_field("w1", "snippets", [{"systemd": {"unit": [{"name": "a.service"}]}}]),
        "machine 'w1'",
        "snippets[0].systemd.unit",
        "unknown",
    ),
    (
        "unknown-machine-key",
        set_field("w1", "instalDisk", "/dev/sda"),
        "machine 'w1'",
        "instalDisk",
        "unknown key",
    ),
    (
        "unknown-cluster-key",
        lambda v: v["cluster"].__setitem__("podCIDR", "10.0.0.0/16"),
        "stubernetes:cluster",
        "podCIDR",
        "unknown key",
    ),
    (
        "unknown-section",
        lambda v: v.__setitem__("machine", {}),
        "stubernetes:machine",
        "",
        "unknown config key",
    ),
    # kubernetesVersion: a supported minor, or an exact patch release of one.
    (
        "kubernetes-minor-unsupported",
        set_cluster("kubernetesVersion", "1.34"),
        "stubernetes:cluster",
        "kubernetesVersion",
        "unsupported Kubernetes minor '1.34'; supported: 1.35, 1.36, 1.37",
    ),
    (
        "kubernetes-patch-of-unsupported-minor",
        set_cluster("kubernetesVersion", "1.38.0"),
        "stubernetes:cluster",
        "kubernetesVersion",
        "unsupported Kubernetes minor '1.38'",
    ),
    (
        "kubernetes-version-with-v",
        set_cluster("kubernetesVersion", "v1.36.3"),
        "stubernetes:cluster",
        "kubernetesVersion",
        "expected a Kubernetes minor such as '1.36' or a patch release such as '1.36.3'",
    ),
    (
        "kubernetes-version-too-many-parts",
        set_cluster("kubernetesVersion", "1.36.3.1"),
        "stubernetes:cluster",
        "kubernetesVersion",
        "expected a Kubernetes minor",
    ),
    # Label keys and values, as kubernetes/kubernetes
    # staging/src/k8s.io/apimachinery/pkg/api/validate/content/kube.go IsLabelKey (the
    # IsQualifiedName of staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go) and
    # IsLabelValue check them; kubelet's ValidateKubeletFlags (cmd/kubelet/app/options/options.go)
    # runs both on --node-labels and exits on a failure.
    (
        "label-key-two-slashes",
        set_label("example.com/a/b"),
        "machine 'w1'",
        "labels.example.com/a/b",
        "more than one '/'",
    ),
    (
        "label-key-prefix-not-dns-subdomain",
        set_label("Example.com/disk"),
        "machine 'w1'",
        "labels.Example.com/disk",
        "prefix 'Example.com' is not a DNS subdomain",
    ),
    (
        # content/dns.go: a DNS-1123 subdomain is at most 253 characters.
        "label-key-prefix-longer-than-253",
        set_label(
            "a" * 50 + "." + "b" * 50 + "." + "c" * 50 + "." + "d" * 50 + "." + "e" * 51 + "/x"
        ),
        "machine 'w1'",
        "labels."
        + "a" * 50
        + "."
        + "b" * 50
        + "."
        + "c" * 50
        + "."
        + "d" * 50
        + "."
        + "e" * 51
        + "/x",
        "prefix is longer than 253",
    ),
    (
        "label-key-name-longer-than-63",
        set_label("example.com/" + "n" * 64),
        "machine 'w1'",
        "labels.example.com/" + "n" * 64,
        "name is longer than 63",
    ),
    (
        "label-key-name-starts-with-dash",
        set_label("example.com/-disk"),
        "machine 'w1'",
        "labels.example.com/-disk",
        "must consist of alphanumeric characters",
    ),
    (
        "label-key-empty-name",
        set_label("example.com/"),
        "machine 'w1'",
        "labels.example.com/",
        "name (after the prefix) is empty",
    ),
    (
        "label-key-empty-prefix",
        set_label("/disk"),
        "machine 'w1'",
        "labels./disk",
        "prefix (before '/') is empty",
    ),
    (
        "label-value-longer-than-63",
        set_label("example.com/disk", "v" * 64),
        "machine 'w1'",
        "labels.example.com/disk",
        "longer than 63",
    ),
    (
        "label-value-with-space",
        set_label("example.com/disk", "fast ssd"),
        "machine 'w1'",
        "labels.example.com/disk",
        "label value 'fast ssd' is not a valid Kubernetes label value",
    ),
    (
        "label-value-ends-with-dot",
        set_label("example.com/disk", "ssd."),
        "machine 'w1'",
        "labels.example.com/disk",
        "must be empty or consist of alphanumeric",
    ),
    # kubelet refuses --node-labels in the kubernetes.io and k8s.io namespaces (the prefix equal
    # to or ending in .kubernetes.io / .k8s.io: isKubernetesLabel in
    # cmd/kubelet/app/options/options.go) unless IsKubeletLabel allows them
    # (staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go: kubeletLabels, and the
    # kubeletLabelNamespaces kubelet.kubernetes.io and node.kubernetes.io); checked in v1.36.3.
    (
        "label-node-role-refused-by-kubelet",
        set_label("node-role.kubernetes.io/worker", ""),
        "machine 'w1'",
        "labels.node-role.kubernetes.io/worker",
        "kubelet would refuse 'node-role.kubernetes.io/worker' at join time on this machine",
    ),
    (
        "label-node-role-suggests-own-domain",
        set_label("node-role.kubernetes.io/worker", ""),
        "machine 'w1'",
        "labels.node-role.kubernetes.io/worker",
        "use a label of your own domain instead, e.g. 'example.com/worker'",
    ),
    (
        "label-kubernetes-io-itself-refused",
        set_label("kubernetes.io/role", "worker"),
        "machine 'w1'",
        "labels.kubernetes.io/role",
        "kubelet would refuse",
    ),
    (
        "label-k8s-io-subdomain-refused",
        set_label("storage.k8s.io/disk", "ssd"),
        "machine 'w1'",
        "labels.storage.k8s.io/disk",
        "kubelet would refuse",
    ),
    (
        "label-node-restriction-namespace-refused",
        set_label("node-restriction.kubernetes.io/pool", "a"),
        "machine 'w1'",
        "labels.node-restriction.kubernetes.io/pool",
        "kubelet would refuse",
    ),
    # Taints: pkg/apis/core/validation/validation.go validateNodeTaints (key: a label key,
    # value: a label value, effect: validateTaintEffect's NoSchedule, PreferNoSchedule,
    # NoExecute; unique by key and effect); checked in v1.36.3.
    (
        "taint-key-not-qualified-name",
        set_taint(key="gpu only"),
        "machine 'w1'",
        "taints[0].key",
        "taint key 'gpu only' is not a valid Kubernetes label key",
    ),
    (
        "taint-key-empty",
        set_taint(key=""),
        "machine 'w1'",
        "taints[0].key",
        "is empty",
    ),
    (
        "taint-value-not-label-value",
        set_taint(value="a/b"),
        "machine 'w1'",
        "taints[0].value",
        "taint value 'a/b' is not a valid Kubernetes label value",
    ),
    (
        # NoScheduleNoAdmit is only a commented-out TODO in validateTaintEffect.
        "taint-effect-unknown",
        set_taint(effect="NoScheduleNoAdmit"),
        "machine 'w1'",
        "taints[0].effect",
        "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
    ),
    (
        "taint-duplicate-key-and-effect",
        set_field(
            "w1",
            "taints",
            [
                {"key": "example.com/gpu", "value": "a", "effect": "NoSchedule"},
                {"key": "example.com/gpu", "value": "b", "effect": "NoSchedule"},
            ],
        ),
        "machine 'w1'",
        "taints[1]",
        "unique by key and effect",
    ),
    # Kernel arguments: one token each; the installed system's may not be the installer's or
    # Ignition's (coreos-installer's coreos.inst.*, the live system's coreos.live.*, Ignition's
    # ignition.*), and the installer's may not repeat what the PXE boot sets itself.
    (
        "kernel-arg-with-space",
        set_field("w1", "kernelArgs", ["console=ttyS0 quiet"]),
        "machine 'w1'",
        "kernelArgs[0]",
        "is not one kernel argument",
    ),
    (
        "kernel-arg-empty",
        set_field("w1", "kernelArgs", [""]),
        "machine 'w1'",
        "kernelArgs[0]",
        "must not be empty",
    ),
    (
        "kernel-arg-coreos-inst",
        set_field("w1", "kernelArgs", ["coreos.inst.install_dev=/dev/sdb"]),
        "machine 'w1'",
        "kernelArgs[0]",
        "coreos.inst.* are the installer's",
    ),
    (
        "kernel-arg-coreos-live",
        set_field("w1", "kernelArgs", ["coreos.live.rootfs_url=http://x/r.img"]),
        "machine 'w1'",
        "kernelArgs[0]",
        "give it in installerKernelArgs",
    ),
    (
        "kernel-arg-ignition",
        set_field("w1", "kernelArgs", ["ignition.firstboot"]),
        "machine 'w1'",
        "kernelArgs[0]",
        "ignition.* are Ignition's own first-boot arguments",
    ),
    (
        "installer-kernel-arg-with-tab",
        set_field("w1", "installerKernelArgs", ["console=ttyS0\tquiet"]),
        "machine 'w1'",
        "installerKernelArgs[0]",
        "is not one kernel argument",
    ),
    (
        "installer-kernel-arg-set-by-pxe",
        set_field("w1", "installerKernelArgs", ["coreos.inst.install_dev=/dev/sdb"]),
        "machine 'w1'",
        "installerKernelArgs[0]",
        "stubernetes sets coreos.inst.install_dev itself",
    ),
    (
        "installer-kernel-args-not-a-list",
        set_field("w1", "installerKernelArgs", "console=ttyS0"),
        "machine 'w1'",
        "installerKernelArgs",
        "valid list",
    ),
    (
        "drain-timeout-below-10",
        set_gates("drainTimeoutSeconds", 5),
        "stubernetes:gates",
        "drainTimeoutSeconds",
        "greater than or equal to 10",
    ),
    (
        "bmc-efi-boot-not-a-boolean",
        set_bmc(efiBoot="uefi"),
        "machine 'w1'",
        "bmc.efiBoot",
        "valid boolean",
    ),
    # Several controllers: an apiEndpoint at one controller's own address cannot outlive it.
    (
        "api-endpoint-at-one-of-two-controllers",
        second_controller_at("192.168.10.11"),
        "stubernetes:cluster",
        "apiEndpoint",
        "192.168.10.11 is the address of controller 'c1' itself",
    ),
    (
        "api-endpoint-at-one-of-two-controllers-names-the-way-out",
        second_controller_at("192.168.10.12"),
        "stubernetes:cluster",
        "apiEndpoint",
        "give the controllers a virtual IP that moves to a healthy one (stubernetes:vip: "
        "address, interface, routerId) and set apiEndpoint to it, or use a DNS name or load "
        "balancer over all of them",
    ),
]


def as_written(value: Any) -> Any:
    """A value as the stack file holds it: where reading it put the stand-in of a secure value
    (the example's Matchbox credentials), the secure value `pulumi config set --secret`
    writes, so that a stack written back gives its secrets as secrets."""
    if value == SECURE_STAND_IN:
        return {"secure": "v1:stand-in"}
    if isinstance(value, dict):
        return {key: as_written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_written(item) for item in value]
    return value


def write_stack(values: dict[str, Any], path: Path) -> Path:
    document = {"config": {f"stubernetes:{key}": as_written(v) for key, v in values.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_render(
    stack_file: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    status = main(["render", "--stack-file", str(stack_file), "--out", str(out)])
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("case", "mutate", "where", "field", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_fails_naming_machine_and_field(
    case: str,
    mutate: Mutation,
    where: str,
    field: str,
    words: str,
    raw_values: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mutate(raw_values)
    out = tmp_path / "out"
    status, errors = run_render(write_stack(raw_values, tmp_path / "stack.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    expected_prefix = f"error: {where}: field '{field}': " if field else f"error: {where}: "
    matching = [line for line in errors if line.startswith(expected_prefix)]
    assert matching, f"no line starts with {expected_prefix!r}: {errors}"
    assert any(words in line for line in matching), errors
    assert not out.exists()


def test_duplicate_machine_name_is_caught_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_STACK_FILE.read_text()
    duplicated = (
        text
        + "    w1:\n      mac: 52:54:00:a1:00:08\n      role: worker\n      installDisk: /dev/sda\n"
    )
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(duplicated)
    status, errors = run_render(stack_file, tmp_path / "out", capsys)
    assert status == EXIT_BAD_INPUT
    line = len(text.splitlines()) + 1
    assert errors == [
        f"error: machine 'w1': field 'name': duplicate machine name ({stack_file}:{line})"
    ]
    assert not (tmp_path / "out").exists()


def test_all_problems_are_reported_in_one_run(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_field("w1", "mac", "nope")(raw_values)
    set_field("w2", "installDisk", "nvme0n1")(raw_values)
    set_admin("sshAuthorizedKeys", [])(raw_values)
    status, errors = run_render(
        write_stack(raw_values, tmp_path / "stack.yaml"), tmp_path / "out", capsys
    )
    assert status == EXIT_BAD_INPUT
    assert [line.split(": field ")[0] for line in errors] == [
        "error: stubernetes:admin",
        "error: machine 'w1'",
        "error: machine 'w2'",
    ]


def test_a_failed_render_leaves_an_earlier_render_untouched(
    raw_values: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    set_field("w1", "role", "boss")(raw_values)
    status, _ = run_render(write_stack(raw_values, tmp_path / "stack.yaml"), out, capsys)
    assert status == EXIT_BAD_INPUT
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
