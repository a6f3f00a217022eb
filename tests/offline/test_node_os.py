"""What a machine's Ignition sets up in Fedora CoreOS for Kubernetes, and the upstream facts each
choice rests on: the CNI plugin directories, the layered packages and their versions,
kubeadm's preflight needs, SELinux labels, and the installed system's kernel arguments."""

from __future__ import annotations

import base64
import copy
import shlex
import tomllib
from typing import Any

import pytest
from repo_paths import TEST_SEED

from ignition import machine_ignition, standin_bootstrap_token
from ignition.kubeadm_certs import standin_certificate_key
from ignition.material import ClusterMaterial
from ignition.node import CRIO_CNI_DROP_IN, container_file_paths, peer_api_endpoints
from ignition.packages import layered_packages
from stackconfig import StackConfig, parse_stack_config
from stackconfig.model import SUPPORTED_KUBERNETES_MINORS
from stackconfig.node_paths import NODE_CNI_BIN_DIR, OPENEBS_HOSTPATH_DIR


def config_of(stack: StackConfig, name: str, material: ClusterMaterial) -> dict[str, Any]:
    machine = stack.machine(name)
    return machine_ignition(
        stack,
        machine,
        material,
        standin_bootstrap_token(TEST_SEED, name),
        certificate_key=standin_certificate_key(TEST_SEED, name),
    )


def file_text(config: dict[str, Any], path: str) -> str:
    (entry,) = [f for f in config["storage"]["files"] if f["path"] == path]
    return base64.b64decode(entry["contents"]["source"].split(",", 1)[1]).decode()


def setup_env(config: dict[str, Any]) -> dict[str, str]:
    env = {}
    for line in file_text(config, "/etc/stubernetes/setup.env").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = " ".join(shlex.split(value))
    return env


def with_version(values: dict[str, Any], version: str) -> StackConfig:
    values = copy.deepcopy(values)
    values["cluster"]["kubernetesVersion"] = version
    return parse_stack_config(values)


# ------------------------------------------------------------------ 1. CNI plugins, writable


def test_crio_searches_the_packaged_and_the_writable_cni_directories(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """kubelet >= 1.28 requires kubernetes-cni (kubernetes/release cmd/krel/templates/latest/
    metadata.yaml), whose rpm installs /opt/cni/bin (kubernetes-cni.spec, `%files /opt/cni/`);
    rpm-ostree keeps a layered package's /opt in /usr/lib/opt, read-only, behind a tmpfiles.d
    symlink (coreos/rpm-ostree rust/src/importer.rs tmpfiles_symlink_entries, "L /opt/<dir> -
    - - - ../../usr/lib/opt/<dir>"; coreos/rpm-ostree#233): the pod network's plugin must go
    elsewhere, and CRI-O must look there.

    CRI-O's `[crio.network] plugin_dirs` lists the plugin directories (cri-o/cri-o
    docs/crio.conf.5.md; default ["/opt/cni/bin/"]). Drop-ins in /etc/crio/crio.conf.d are
    applied in lexical order and the last file setting an option wins (docs/crio.conf.d.5.md);
    the cri-o rpm's own drop-in is 10-crio.conf, which sets no crio.network option
    (cri-o/packaging templates/latest/cri-o/bundle/10-crio.conf), so ours sorts after it and
    names both directories. CRI-O creates every plugin directory it is given at start
    (pkg/config/config.go, os.MkdirAll for each plugin_dirs entry), so Ignition need not."""
    for name in ("c1", "w1", "w2"):
        config = config_of(example_stack, name, material)
        drop_in = tomllib.loads(file_text(config, CRIO_CNI_DROP_IN))
        assert drop_in == {"crio": {"network": {"plugin_dirs": ["/opt/cni/bin", NODE_CNI_BIN_DIR]}}}
    directory, name = CRIO_CNI_DROP_IN.rsplit("/", 1)
    assert directory == "/etc/crio/crio.conf.d" and name.endswith(".conf")
    assert sorted(["10-crio.conf", name])[-1] == name


def test_the_writable_cni_directory_keeps_its_policy_label(example_stack: StackConfig) -> None:
    """container-selinux labels /var/lib/cni(/.*)? container_var_lib_t (container.fc); CRI-O
    (container_runtime_t) may execute such files and runs them as spc_t (container.te:
    `can_exec(container_runtime_domain, container_var_lib_t)`, `domtrans_pattern(
    container_runtime_domain, container_var_lib_t, spc_t)`), and the pod network's plugin
    installer writes there as a privileged container (spc_t, unconfined). So /var/lib/cni/bin
    needs no label of its own, and is not relabelled container_file_t, which would let any
    container that mounts it plant a plugin that CRI-O runs on the host."""
    assert NODE_CNI_BIN_DIR.startswith("/var/lib/cni/")
    for machine in example_stack.machines:
        paths = container_file_paths(machine)
        assert not any(p == NODE_CNI_BIN_DIR or NODE_CNI_BIN_DIR.startswith(p + "/") for p in paths)
        assert "/etc/cni/net.d" not in paths and "/run/flannel" not in paths


# ------------------------------------------------------------ 2. kubeadm's preflight, packages


def test_packages_cover_kubeadms_preflight_on_fedora_coreos(example_values: dict[str, Any]) -> None:
    """kubeadm 1.36's preflight (kubernetes cmd/kubeadm/app/preflight/checks_linux.go
    addExecChecks, at v1.36.3) requires in PATH: `conntrack` only for Kubernetes < 1.32 (kube-
    proxy no longer needs it, kubernetes/kubernetes#126952), then `losetup`, `mount` and `cp`;
    the old ip, iptables, nsenter, ebtables, ethtool, socat, tc and touch checks are gone. It
    reaches the runtime through the CRI socket (checks.go ContainerRuntimeCheck), not crictl, and
    checks /proc/sys/net/ipv4/ip_forward is 1 (addIPv4Checks), swap, the kernel configuration
    and cgroups (SystemVerificationCheck). Fedora CoreOS ships util-linux (losetup, mount),
    coreutils (cp), iproute, iptables-nft, socat and ethtool, but not conntrack-tools
    (coreos/fedora-coreos-config manifest-lock.x86_64.json); its rpm-ostree image has no cri-tools.

    The pkgs.k8s.io kubeadm rpm requires nothing from 1.32 on (its cri-tools requirement ended
    at 1.31: kubernetes/release cmd/krel/templates/latest/metadata.yaml); kubelet requires
    kubernetes-cni, iptables and util-linux (kubelet.spec). kube-proxy 1.36 clears conntrack
    entries through netlink (pkg/proxy/conntrack/conntrack.go), in its own image, so it needs
    no conntrack binary on the host either: conntrack-tools is layered for every version for
    kubeadm < 1.32's check and the operator; cri-tools for crictl, which kubeadm's own failure
    message tells the operator to run (cmd/kubeadm/app/util/apiclient/wait.go)."""
    for minor in SUPPORTED_KUBERNETES_MINORS:
        packages = layered_packages(with_version(example_values, minor))
        assert {"kubelet", "kubeadm", "kubectl", "cri-o"} <= set(packages)
        assert {"conntrack-tools", "cri-tools"} <= set(packages)


def test_ip_forwarding_is_on_for_kubeadms_preflight(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    config = config_of(example_stack, "w1", material)
    sysctl = file_text(config, "/etc/sysctl.d/90-stubernetes.conf")
    assert "net.ipv4.ip_forward = 1" in sysctl.splitlines()


@pytest.mark.parametrize(
    ("version", "packages"),
    [
        ("1.36.3", ("kubelet-1.36.3", "kubeadm-1.36.3", "kubectl-1.36.3")),
        ("1.36", ("kubelet", "kubeadm", "kubectl")),
    ],
    ids=["patch", "minor"],
)
def test_layered_kubernetes_packages_are_the_requested_version(
    example_values: dict[str, Any],
    material: ClusterMaterial,
    version: str,
    packages: tuple[str, ...],
) -> None:
    """With a patch release the Kubernetes packages are requested as name-version, which
    rpm-ostree (libdnf's NEV form) and `rpm -q` both read as that version, any release (see
    test_setup_service.py, "exact versions"); with a minor, the newest of its repository. CRI-O
    is the newest of its minor's repository either way: its patches are not Kubernetes'. The
    setup's `rpm -q` check asks for exactly what was layered."""
    stack = with_version(example_values, version)
    expected = (*packages, "cri-o", "conntrack-tools", "cri-tools")
    assert layered_packages(stack) == expected
    config = config_of(stack, "w1", material)
    env = setup_env(config)
    assert env["PACKAGES"].split() == list(expected)
    assert env["KUBERNETES_MINOR"] == "1.36"
    kubernetes_repo = file_text(config, "/etc/yum.repos.d/kubernetes.repo")
    assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.36/rpm/" in kubernetes_repo
    crio_repo = file_text(config, "/etc/yum.repos.d/cri-o.repo")
    assert "/isv:/cri-o:/stable:/v1.36/rpm/" in crio_repo
    phase = file_text(config, "/usr/local/lib/stubernetes/phase-packages")
    assert 'rpm -q --quiet "${package_list[@]}"' in phase
    assert 'rpm-ostree install --idempotent --allow-inactive "${package_list[@]}"' in phase


# ------------------------------------------------------------------------------- 3. SELinux


def test_host_paths_labelled_for_containers_by_role(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Why each (the facts are beside the simulations in test_setup_service.py, "SELinux"):
    /etc/kubernetes and /var/lib/etcd for the control plane's static pods on a controller,
    OpenEBS's hostpath base directory everywhere (its chart's default basePath; container.fc
    labels the equivalent directories of local-path-provisioner container_file_t). Not the pod
    network's paths: flannel runs privileged."""
    assert OPENEBS_HOSTPATH_DIR == "/var/openebs/local"
    expected = {
        "c1": ["/etc/kubernetes", "/var/lib/etcd", OPENEBS_HOSTPATH_DIR],
        "w1": [OPENEBS_HOSTPATH_DIR],
        "w2": [OPENEBS_HOSTPATH_DIR],
    }
    for name, paths in expected.items():
        config = config_of(example_stack, name, material)
        assert setup_env(config)["CONTAINER_FILE_PATHS"].split() == paths
        script = file_text(config, "/usr/local/lib/stubernetes/label-host-paths")
        assert 'chcon -R -t container_file_t -l s0 "$path"' in script


def test_no_persistent_selinux_rule_is_made(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Fedora CoreOS ships no semanage (policycoreutils-python-utils needs Python, which its
    manifest excludes: coreos/fedora-coreos-config manifests/fedora-coreos.yaml
    exclude-packages), and a persistent local policy change freezes the policy in /etc, so the
    OS's policy updates stop (coreos/fedora-coreos-tracker#701): labels are set with chcon, as
    the tracker's workaround sets them without persisting policy. A full relabel resets them."""
    config = config_of(example_stack, "c1", material)
    commands = [
        line
        for f in config["storage"]["files"]
        if f["path"].startswith("/usr/local/")
        for line in file_text(config, f["path"]).splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert any("chcon -R -t container_file_t" in line for line in commands)
    for tool in ("semanage", "semodule", "setsebool", "restorecon"):
        assert not any(tool in line for line in commands), tool


def test_only_the_founding_controller_asks_its_peers(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    values = copy.deepcopy(example_values)
    values["cluster"]["apiEndpoint"] = "192.168.10.10:6443"
    for index in (2, 3):
        values["machines"][f"c{index}"] = {
            "mac": f"52:54:00:a1:00:1{index}",
            "role": "controller",
            "installDisk": "/dev/sda",
            "address": f"192.168.10.1{index}/24",
            "gateway": "192.168.10.1",
            "dns": ["192.168.10.1"],
        }
    stack = parse_stack_config(values)
    assert peer_api_endpoints(stack, stack.machine("c1")) == (
        "192.168.10.12:6443",
        "192.168.10.13:6443",
    )
    assert peer_api_endpoints(stack, stack.machine("c2")) == ()
    assert setup_env(config_of(stack, "c2", material))["PEER_API_ENDPOINTS"] == ""


# ------------------------------------------------------------------- 4. kernel arguments


def test_kernel_arguments_of_the_installed_system(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    """Ignition 3.3's `kernelArguments.shouldExist` (coreos/ignition docs/configuration-v3_3.md).
    On Fedora CoreOS Ignition's kargs stage runs in the first boot's initramfs, after fetch and
    before disks (dracut/30ignition/ignition-kargs.service), calls ignition-kargs-helper with
    `--should-exist` per argument (internal/exec/stages/kargs/kargs.go), and reboots when they
    changed ("kargs changed -> Reboot & restart from top": docs/ignition-flow.md;
    docs/distributor-notes.md: "The binary should also reboot the system if necessary"): one
    extra reboot, so the section is there only when there are arguments."""
    values = copy.deepcopy(example_values)
    values["machines"]["w1"]["kernelArgs"] = ["console=ttyS0,115200n8", "mitigations=off"]
    stack = parse_stack_config(values)
    assert config_of(stack, "w1", material)["kernelArguments"] == {
        "shouldExist": ["console=ttyS0,115200n8", "mitigations=off"]
    }
    for name in ("c1", "w2"):
        assert "kernelArguments" not in config_of(stack, name, material)
