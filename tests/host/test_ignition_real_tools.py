"""Every machine's Ignition, checked by the real tools: Ignition v2.24.0 itself and its
ignition-validate (both built by scripts/tools), visudo, shellcheck and systemd-analyze.

Each config downloads kubeadm, kubectl, kubelet and the CNI plugins' archive. Here the real
Matchbox serves this repository's own builds of them under /assets/, the stack names their
sha256 in `cluster.binarySha256` and sets `os.cachedInstall: true`, as a user serving binaries
of their own would (tests/real/node_downloads.py), and the real Ignition fetches them.
"""

from __future__ import annotations

import filecmp
import hashlib
import ipaddress
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ignition_root import IgnitionFailed, apply_ignition, install_host_units, kargs_helper_calls
from node_downloads import ServedDownloads, served_downloads
from real_tools import quiet_run, shellcheck, systemd_verify, visudo_check
from repo_paths import TEST_SEED
from tool_cache import tool_bin

from ignition import machine_ignition_json, standin_bootstrap_token
from ignition.flatcar_install import (
    INSTALLER_PATH,
    INSTALLER_UNIT,
    flatcar_install,
    installer_script,
)
from ignition.kubeadm_certs import standin_certificate_key
from ignition.material import ClusterMaterial
from ignition.node_binaries import node_downloads
from ignition.setup_paths import SETUP_UNIT
from stackconfig import Machine, StackConfig, parse_stack_config

IGNITION_VALIDATE = tool_bin("ignition", "ignition-validate")
pytestmark = pytest.mark.skipif(
    IGNITION_VALIDATE is None or tool_bin("matchbox", "matchbox") is None,
    reason="needs Ignition and Matchbox built: ./scripts/tools ignition matchbox "
    "kubernetes kubelet cni-plugins",
)

SCRIPTS = (
    "usr/local/bin/stubernetes-setup",
    "usr/local/lib/stubernetes/phase-node",
    "usr/local/lib/stubernetes/phase-kubeadm",
    "usr/local/lib/stubernetes/phase-finish",
    "usr/local/lib/stubernetes/label-host-paths",
)
# What kubeadm reuses when it finds it, and a control-plane join requires.
SHARED_PKI = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)


def ignition_validate(config: bytes, workdir: Path) -> str:
    """ignition-validate v2.24.0 on `config`: '' when it has nothing to say."""
    assert IGNITION_VALIDATE is not None
    path = workdir / "validate.ign"
    path.write_bytes(config)
    return quiet_run([str(IGNITION_VALIDATE), str(path)])


@pytest.fixture(scope="module")
def served(
    example_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedDownloads]:
    with served_downloads(example_values, tmp_path_factory.mktemp("served")) as downloads:
        yield downloads


def render(stack: StackConfig, machine: Machine, material: ClusterMaterial) -> bytes:
    return machine_ignition_json(
        stack,
        machine,
        material,
        standin_bootstrap_token(TEST_SEED, machine.name),
        certificate_key=standin_certificate_key(TEST_SEED, machine.name),
    )


def applied_root(config: bytes, tmp: Path) -> Path:
    root, work = tmp / "root", tmp / "work"
    root.mkdir()
    work.mkdir()
    apply_ignition(config, root, work)
    return root


def check_applied_tree(stack: StackConfig, machine: Machine, root: Path) -> None:
    admin = stack.admin.user
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert any(line.startswith(f"{admin}:") for line in passwd)
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (root / "etc/group").read_text().splitlines()
    }
    assert admin in groups["wheel"] and admin in groups["sudo"]
    keys = (root / f"home/{admin}/.ssh/authorized_keys.d/ignition").read_text().splitlines()
    assert keys == list(stack.admin.ssh_authorized_keys)

    sudoers = root / "etc/sudoers.d/stubernetes-admin"
    assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440
    assert visudo_check(sudoers) == ""
    assert f"{admin} ALL=(ALL) NOPASSWD: ALL" in sudoers.read_text()

    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text()
    assert f"enable {SETUP_UNIT}" in preset.splitlines()
    assert (root / f"etc/systemd/system/{SETUP_UNIT}").is_file()
    for script in SCRIPTS:
        assert stat.S_IMODE((root / script).stat().st_mode) == 0o755, script

    assert (root / "etc/hostname").read_text() == f"{machine.name}\n"
    keyfile = root / "etc/NetworkManager/system-connections/stubernetes-static.nmconnection"
    assert keyfile.exists() == (machine.address is not None)
    if machine.address is not None:
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        assert f"address1={machine.address}" in keyfile.read_text()

    kubeadm = (root / "etc/stubernetes/kubeadm.yaml").read_text()
    assert ("kind: InitConfiguration" in kubeadm) == machine.init
    assert ("controlPlane:" in kubeadm) == (machine.is_controller and not machine.init)
    # The founding controller's control-plane join, for when its cluster already answers.
    join = root / "etc/stubernetes/kubeadm-join.yaml"
    assert join.exists() == machine.init
    if machine.init:
        assert stat.S_IMODE(join.stat().st_mode) == 0o600
        assert "controlPlane:" in join.read_text()
    etcd_patch = root / "etc/stubernetes/kubeadm-patches/etcd+strategic.yaml"
    assert etcd_patch.exists() == machine.is_controller
    assert "[grpc]" in (root / "etc/containerd/config.toml").read_text()
    # Only the founding controller carries the CA material; a joining one downloads it with its
    # certificate key (kubernetes cmd/kubeadm/app/phases/copycerts/copycerts.go DownloadCerts).
    pki = root / "etc/stubernetes/pki"
    assert sorted(str(p.relative_to(pki)) for p in pki.rglob("*") if p.is_file()) == (
        sorted(SHARED_PKI) if machine.init else []
    )
    if machine.is_controller and not machine.init:
        assert "certificateKey: " in kubeadm
    assert (root / "etc/zincati/config.d/90-stubernetes-hold-updates.toml").exists()


def check_and_drop_downloads(stack: StackConfig, served: ServedDownloads, root: Path) -> None:
    """Ignition wrote every download at its path, with its mode, byte for byte what Matchbox
    served; then they are removed, since each tree would keep some 200 MB of binaries."""
    for download in node_downloads(stack):
        written = root / download.path.lstrip("/")
        assert stat.S_IMODE(written.stat().st_mode) == download.mode, download.path
        assert filecmp.cmp(written, served.files[download.name], shallow=False), download.path
        written.unlink()


def check_with_tools(root: Path) -> None:
    assert shellcheck([root / s for s in SCRIPTS], cwd=root / "usr/local/lib/stubernetes") == ""
    install_host_units(root)
    assert systemd_verify(root, f"/etc/systemd/system/{SETUP_UNIT}") == ""


@pytest.mark.parametrize("name", ["c1", "w1", "w2"])
def test_example_machine_passes_every_real_tool(
    name: str, served: ServedDownloads, material: ClusterMaterial, tmp_path: Path
) -> None:
    stack = served.stack
    machine = stack.machine(name)
    config = render(stack, machine, material)
    assert ignition_validate(config, tmp_path) == ""
    root = applied_root(config, tmp_path)
    check_applied_tree(stack, machine, root)
    check_and_drop_downloads(stack, served, root)
    check_with_tools(root)


# Ignition's own words for a fetched file whose digest is not the one its config names
# (coreos/ignition v2.24.0 `internal/util/verification.go` ErrHashMismatch).
HASH_MISMATCH = "hash verification failed (calculated {calculated} but expected {expected})"


@pytest.mark.parametrize("name", ["kubeadm", "kubelet", "cni-plugins"])
def test_a_tampered_download_fails_ignition_and_is_not_written(
    name: str, served: ServedDownloads, material: ClusterMaterial, tmp_path: Path
) -> None:
    """Matchbox serves a file one byte off the build whose digest the stack names. The real
    Ignition hashes what it downloads while it copies it into a temporary file beside the
    target and compares the sum with `verification.hash` (coreos/ignition v2.24.0
    `internal/resource/url.go` FetchFromHTTP -> decompressCopyHashAndVerify); on a mismatch the
    fetch fails, so `internal/exec/util/file.go` PerformFetch never renames the temporary file
    into place (and removes it), and the files stage exits non-zero: the node never gets it."""
    stack = served.stack
    (download,) = [d for d in node_downloads(stack) if d.name == name]
    genuine = served.files[name].read_bytes()
    middle = len(genuine) // 2
    tampered = genuine[:middle] + bytes([genuine[middle] ^ 0x01]) + genuine[middle + 1 :]
    served.serve_instead(name, tampered)
    try:
        config = render(stack, stack.machine("w1"), material)
        root, work = tmp_path / "root", tmp_path / "work"
        with pytest.raises(IgnitionFailed) as failed:
            apply_ignition(config, root, work, keep_failed_root=True)
    finally:
        served.restore(name)
    message = str(failed.value)
    assert "Ignition's files stage exited" in message, message
    expected = HASH_MISMATCH.format(
        calculated=hashlib.sha256(tampered).hexdigest(), expected=download.sha256
    )
    assert expected in message, message
    assert download.path in message, message
    # The tree is what Ignition left: it writes shallower paths first (`internal/exec/stages/
    # files/filesystemEntries.go`, sorted by depth), so /etc/hostname went in before it.
    assert (root / "etc/hostname").read_text() == "w1\n"
    target = root / download.path.lstrip("/")
    assert not target.exists()
    # PerformFetch made the folder before fetching, and removed its temporary file.
    assert target.parent.is_dir()
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith("tmp")]


def test_kernel_arguments_reach_ignitions_kargs_stage(
    served: ServedDownloads, material: ClusterMaterial, tmp_path: Path
) -> None:
    """The real Ignition validates and applies a config with kernelArguments: its kargs stage
    calls ignition-kargs-helper with --should-exist for each argument, in order (here a stand-in
    that records them: the real helper edits an installed system's boot entries and reboots;
    see tests/host/ignition_root.py), and a config without them calls nothing."""
    values = {**served.values, "machines": dict(served.values["machines"])}
    values["machines"]["w1"] = {
        **values["machines"]["w1"],
        "kernelArgs": ["console=ttyS0,115200n8", "mitigations=off"],
    }
    stack = parse_stack_config(values)
    for name, expected in (
        ("w1", [["--should-exist", "console=ttyS0,115200n8", "--should-exist", "mitigations=off"]]),
        ("w2", []),
    ):
        machine = stack.machine(name)
        config = render(stack, machine, material)
        tmp = tmp_path / name
        tmp.mkdir()
        assert ignition_validate(config, tmp) == ""
        root = applied_root(config, tmp)
        assert kargs_helper_calls(tmp / "work") == expected
        check_applied_tree(stack, machine, root)
        check_and_drop_downloads(stack, served, root)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Each checker reports a planted mistake, so an empty report above means something."""
    unknown_key = b'{"ignition":{"version":"3.3.0"},"storage":{"filez":[]}}'
    assert "filez" in ignition_validate(unknown_key, tmp_path)
    root = tmp_path / "root"
    unit = root / "etc/systemd/system/bad.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExitt=yes\n")
    install_host_units(root)
    assert "RemainAfterExitt" in systemd_verify(root, "/etc/systemd/system/bad.service")
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/bash\necho $1\n")
    assert "SC2086" in shellcheck([script], cwd=tmp_path)
    sudoers = tmp_path / "sudoers"
    sudoers.write_text("admin ALL=(ALL NOPASSWD ALL\n")
    assert visudo_check(sudoers) != ""


# --- generated stacks across roles -----------------------------------------------------------

names = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=5, unique=True
)


def lan_of(values: dict[str, Any]) -> ipaddress.IPv4Network:
    """The subnet of the example's statically addressed machines: the stack's own address
    ranges (API endpoint, load-balancer pool, DHCP range) lie in it."""
    (network,) = {
        ipaddress.IPv4Interface(machine["address"]).network
        for machine in values["machines"].values()
        if "address" in machine
    }
    return network


@st.composite
def stacks(
    draw: st.DrawFn, base: dict[str, Any], lan: ipaddress.IPv4Network
) -> tuple[StackConfig, str]:
    machine_names = draw(names)
    controllers = draw(st.integers(min_value=1, max_value=len(machine_names)))
    machines: dict[str, Any] = {}
    for index, name in enumerate(machine_names):
        fields: dict[str, Any] = {
            "mac": f"52:54:00:00:{index // 256:02x}:{index % 256:02x}",
            "role": "controller" if index < controllers else "worker",
            "installDisk": draw(st.sampled_from(["/dev/sda", "/dev/nvme0n1", "/dev/disk/by-id/x"])),
        }
        if draw(st.booleans()):
            # .20 and up: below the example's DHCP range, apart from its API endpoint (.11).
            gateway = str(lan.network_address + 1)
            fields.update(
                address=f"{lan.network_address + 20 + index}/{lan.prefixlen}",
                gateway=gateway,
                dns=[gateway],
            )
        if draw(st.booleans()):
            fields["labels"] = {"example.com/zone": draw(st.sampled_from(["a", "b"]))}
        if draw(st.booleans()):
            fields["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
        if draw(st.booleans()):
            fields["kernelArgs"] = draw(
                st.lists(st.sampled_from(["quiet", "console=ttyS0,115200n8", "nosmt"]), unique=True)
            )
        if draw(st.booleans()):
            fields["snippets"] = [
                {
                    "storage": {
                        "files": [
                            {
                                "path": f"/etc/motd.d/{name}",
                                "mode": 420,
                                "contents": {"source": "data:,hello%0A"},
                            }
                        ]
                    }
                }
            ]
        machines[name] = fields
    stack = parse_stack_config({**base, "machines": machines})
    return stack, draw(st.sampled_from(machine_names))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_generated_machines_pass_every_real_tool(
    data: st.DataObject,
    served: ServedDownloads,
    material: ClusterMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = {k: v for k, v in served.values.items() if k != "machines"}
    stack, name = data.draw(stacks(base, lan_of(served.values)))
    machine = stack.machine(name)
    tmp = tmp_path_factory.mktemp("generated")
    config = render(stack, machine, material)
    assert ignition_validate(config, tmp) == ""
    root = applied_root(config, tmp)
    check_applied_tree(stack, machine, root)
    check_and_drop_downloads(stack, served, root)
    if machine.snippets:
        # Ignition merged the snippet itself.
        assert (root / f"etc/motd.d/{name}").read_text() == "hello\n"
    expected = [arg for kernel_arg in machine.kernel_args for arg in ("--should-exist", kernel_arg)]
    assert kargs_helper_calls(tmp / "work") == ([expected] if expected else [])
    check_with_tools(root)


# A Flatcar machine (ignition/flatcar_machine.py, its facts cited there and in
# tests/offline/test_flatcar_machine.py): the same checks where the tree is the same, and
# Flatcar's own places where it is not. Flatcar stable 4593.2.5 ships Ignition 2.24.0, this
# binary's release (flatcar/flatcar-website data/releases/stable/4593.2.5.yml image_packages).
FLATCAR_OS = {"flavor": "flatcar", "channel": "stable", "version": "4593.2.5"}
FLATCAR_SCRIPTS = tuple(
    s.replace("usr/local/lib/stubernetes", "opt/stubernetes").replace("usr/local/bin", "opt/bin")
    for s in SCRIPTS
)


@pytest.mark.parametrize("name", ["c1", "w1"])
def test_flatcar_machine_passes_every_real_tool(
    name: str, served: ServedDownloads, material: ClusterMaterial, tmp_path: Path
) -> None:
    values = {**served.values, "os": {**FLATCAR_OS, "cachedInstall": True}}
    stack = parse_stack_config(values)
    machine = stack.machine(name)
    config = render(stack, machine, material)
    assert ignition_validate(config, tmp_path) == ""
    root = applied_root(config, tmp_path)
    assert not (root / "usr/local").exists()
    for script in FLATCAR_SCRIPTS:
        assert stat.S_IMODE((root / script).stat().st_mode) == 0o755, script
    for download in node_downloads(served.stack):
        flatcar_path = download.path.replace("/usr/local/bin/", "/opt/bin/")
        written = root / flatcar_path.lstrip("/")
        assert filecmp.cmp(written, served.files[download.name], shallow=False), flatcar_path
        written.unlink()
    units = root / "etc/systemd/system"
    assert "ExecStart=/opt/bin/stubernetes-setup" in (units / SETUP_UNIT).read_text()
    path_dropin = (units / f"{SETUP_UNIT}.d/10-flatcar-path.conf").read_text()
    assert '"PATH=/opt/bin:' in path_dropin
    assert (units / f"{SETUP_UNIT}.d/10-flatcar-updates.conf").is_file()
    containerd = (units / "containerd.service.d/10-use-custom-config.conf").read_text()
    assert "ExecStart=/usr/bin/containerd" in containerd
    # A masked unit is a link to /dev/null (coreos/ignition internal/exec/stages/files/units.go).
    assert (units / "locksmithd.service").resolve() == Path("/dev/null")
    assert "SERVER=disabled" in (root / "etc/flatcar/update.conf").read_text()
    assert not (root / "etc/zincati").exists()
    assert not (root / "etc/NetworkManager").exists()
    network = (root / "etc/systemd/network/00-stubernetes-static.network").read_text()
    assert f"Address={machine.address}" in network
    scripts = [root / s for s in (*FLATCAR_SCRIPTS, "opt/stubernetes/stubernetes-os-reboot")]
    assert shellcheck(scripts, cwd=root / "opt/stubernetes") == ""
    install_host_units(root)
    for unit in (
        SETUP_UNIT,
        "stubernetes-os-reboot.path",
        "stubernetes-os-reboot.service",
        "stubernetes-os-steady-state.service",
    ):
        assert systemd_verify(root, f"/etc/systemd/system/{unit}") == "", unit


def test_flatcar_install_ignition_is_applied_by_the_real_ignition(
    served: ServedDownloads, tmp_path: Path
) -> None:
    """The PXE-booted live system's Ignition (ignition/flatcar_install.py), as Flatcar's Ignition
    2.24.0 applies it: the installer script, its unit, sshd moved to the install port, and
    Flatcar's own user `core` with the admin's keys (Typhoon's butane/install.yaml)."""
    stack = parse_stack_config({**served.values, "os": FLATCAR_OS})
    machine = stack.machine("c1")
    config = flatcar_install(stack, machine).ignition
    assert ignition_validate(config, tmp_path) == ""
    root = applied_root(config, tmp_path)
    installer = root / INSTALLER_PATH.lstrip("/")
    assert stat.S_IMODE(installer.stat().st_mode) == 0o500
    assert installer.read_text() == installer_script(stack, machine)
    units = root / "etc/systemd/system"
    assert (units / INSTALLER_UNIT).is_file()
    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text()
    assert f"enable {INSTALLER_UNIT}" in preset.splitlines()
    assert "ListenStream=2222" in (units / "sshd.socket.d/10-install-port.conf").read_text()
    keys = (root / "home/core/.ssh/authorized_keys.d/ignition").read_text().splitlines()
    assert keys == list(stack.admin.ssh_authorized_keys)
