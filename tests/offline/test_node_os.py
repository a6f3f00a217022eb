"""What a machine's Ignition sets up in Fedora CoreOS for Kubernetes, and the upstream facts each
choice rests on: the container runtime's config, the kubelet's unit, the binaries Ignition
downloads and checks, kubeadm's preflight needs, SELinux labels, and the installed system's
kernel arguments. Nothing is layered: the runtime is the containerd Fedora CoreOS ships."""

from __future__ import annotations

import base64
import configparser
import copy
import shlex
import tomllib
from typing import Any

import pytest
from repo_paths import TEST_SEED

from ignition import machine_ignition, standin_bootstrap_token
from ignition.kubeadm import CRI_SOCKET, KUBELET_CONFIGURATION, kubernetes_version
from ignition.kubeadm_certs import standin_certificate_key
from ignition.material import ClusterMaterial
from ignition.node import container_file_paths, peer_api_endpoints
from stackconfig import StackConfig, parse_stack_config
from stackconfig.model import SUPPORTED_KUBERNETES_MINORS
from stackconfig.node_paths import NODE_CNI_BIN_DIR, OPENEBS_HOSTPATH_DIR

# containerd reads /etc/containerd/config.toml unless told otherwise (containerd v2.2.9
# defaults/defaults_unix.go DefaultConfigDir, cmd/containerd/command/main.go --config default).
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CRI_PLUGIN = "io.containerd.grpc.v1.cri"
SETUP_ENV = "/etc/stubernetes/setup.env"
ROLES = ("c1", "w1", "w2")
# The release downloads (kubernetes.io "Installing kubeadm", without a package manager;
# containernetworking/plugins' GitHub releases), and where the nodes put them.
KUBERNETES_DOWNLOADS = "https://dl.k8s.io/release"
CNI_PLUGINS_RELEASE = "1.9.1"
CNI_ARCHIVE = f"cni-plugins-linux-amd64-v{CNI_PLUGINS_RELEASE}.tgz"
CNI_DOWNLOAD = (
    "https://github.com/containernetworking/plugins/releases/download/"
    f"v{CNI_PLUGINS_RELEASE}/{CNI_ARCHIVE}"
)
CNI_ARCHIVE_PATH = f"/var/lib/stubernetes/downloads/{CNI_ARCHIVE}"
CRICTL_DOWNLOAD = (
    "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.36.0/"
    "crictl-v1.36.0-linux-amd64.tar.gz"
)
CRICTL_ARCHIVE_PATH = "/var/lib/stubernetes/downloads/crictl-v1.36.0-linux-amd64.tar.gz"
KUBELET = "/usr/local/bin/kubelet"


def config_of(
    stack: StackConfig, name: str, material: ClusterMaterial, cluster_exists: bool = False
) -> dict[str, Any]:
    machine = stack.machine(name)
    return machine_ignition(
        stack,
        machine,
        material,
        standin_bootstrap_token(TEST_SEED, name),
        certificate_key=standin_certificate_key(TEST_SEED, name),
        cluster_exists=cluster_exists,
    )


def file_entry(config: dict[str, Any], path: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [f for f in config["storage"]["files"] if f["path"] == path]
    (entry,) = entries
    return entry


def file_text(config: dict[str, Any], path: str) -> str:
    source = file_entry(config, path)["contents"]["source"]
    assert source.startswith("data:"), path
    return base64.b64decode(source.split(",", 1)[1]).decode()


def remote_files(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The files Ignition downloads: every entry whose source is not inline data."""
    return {
        f["path"]: f
        for f in config["storage"]["files"]
        if not f["contents"]["source"].startswith("data:")
    }


def setup_env(config: dict[str, Any]) -> dict[str, str]:
    env = {}
    for line in file_text(config, SETUP_ENV).splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = " ".join(shlex.split(value))
    return env


def units(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in config["systemd"]["units"]}


def unit_directives(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> its values in order, as systemd reads a unit (repeated keys kept)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def containerd_config(config: dict[str, Any]) -> dict[str, Any]:
    return tomllib.loads(file_text(config, CONTAINERD_CONFIG))


def with_values(values: dict[str, Any], **cluster: Any) -> StackConfig:
    values = copy.deepcopy(values)
    values["cluster"].update(cluster)
    return parse_stack_config(values)


# ------------------------------------------------------------------- 1. the container runtime


@pytest.mark.parametrize("name", ROLES)
def test_containerd_serves_the_socket_kubeadm_names(
    name: str, example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Schema version 2, which containerd 1.7 reads as it is and containerd 2.x migrates in
    memory at start (containerd v2.2.9 plugins/cri/runtime/plugin.go configMigration, for a
    config older than version.ConfigVersion 3), so the file serves whichever containerd the
    Fedora CoreOS build ships. kubeadm reaches the runtime only through `criSocket`
    (cmd/kubeadm/app/preflight/checks.go addCommonChecks: ContainerRuntimeCheck{criSocket}), so
    that is containerd's `grpc.address`, its Linux default (defaults/defaults_linux.go
    DefaultAddress "/run/containerd/containerd.sock")."""
    config = containerd_config(config_of(example_stack, name, material))
    assert config["version"] == 2
    assert (config["root"], config["state"]) == ("/var/lib/containerd", "/run/containerd")
    assert CRI_SOCKET == "unix:///run/containerd/containerd.sock"
    assert f"unix://{config['grpc']['address']}" == CRI_SOCKET


def test_containerd_looks_for_cni_plugins_where_they_are_unpacked(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """One directory for the reference plugins the setup unpacks and flannel's own, which its
    chart copies there: containerd's default, left unset (containerd v2.2.9
    internal/cri/config/config_unix.go: NetworkPluginBinDirs defaultNetworkPluginBinDirs,
    ["/opt/cni/bin"]; NetworkPluginConfDir "/etc/cni/net.d"). Setting it would need schema 2's
    `bin_dir`, which containerd 2.1 deprecates for `bin_dirs` (pkg/deprecation CRICNIBinDir).
    On Fedora CoreOS /opt is /var/opt, writable: nothing is layered, so rpm-ostree never moves
    it to read-only /usr/lib/opt."""
    config = config_of(example_stack, "w1", material)
    cri = containerd_config(config)["plugins"][CRI_PLUGIN]
    assert "cni" not in cri
    assert NODE_CNI_BIN_DIR == "/opt/cni/bin"
    assert setup_env(config)["CNI_BIN_DIR"] == NODE_CNI_BIN_DIR


def test_the_runtime_and_the_kubelet_agree_on_the_cgroup_driver(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """The kubelet and the runtime must use the same cgroup driver (kubernetes.io, "Container
    Runtimes", cgroup drivers), systemd where systemd is init. kubeadm's KubeletConfiguration
    says systemd (kubeadm's own default since 1.22: cmd/kubeadm/app/componentconfigs/
    kubelet.go); containerd's runc runtime says it with `SystemdCgroup`, and reports it to the
    kubelet through the CRI (internal/cri/server/runtime_config_linux.go
    getCgroupDriverFromRuntimeHandlerOpts), which the kubelet follows from 1.34 on
    (KubeletCgroupDriverFromCRI, GA in pkg/features/kube_features.go): both say systemd."""
    cri = containerd_config(config_of(example_stack, "c1", material))["plugins"][CRI_PLUGIN]
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert KUBELET_CONFIGURATION["cgroupDriver"] == "systemd"


def test_containerd_labels_every_container_for_selinux(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """SELinux stays enforcing on Fedora CoreOS, and containerd's CRI labels containers only
    with `enable_selinux` (internal/cri/config/config.go EnableSelinux, default false): then
    each sandbox gets container_t with its own MCS pair (internal/cri/server/podsandbox/
    helpers_linux.go initLabelsFromOpt -> go-selinux label.InitLabels)."""
    cri = containerd_config(config_of(example_stack, "w2", material))["plugins"][CRI_PLUGIN]
    assert cri["enable_selinux"] is True


def test_the_cni_directory_is_not_relabelled_for_containers(example_stack: StackConfig) -> None:
    """container_t may write container_file_t: were the plugin directory relabelled so, any
    container that mounts it could plant a plugin the runtime runs on the host. flannel's
    installer copies its plugin there as a privileged container (spc_t, unconfined), so the
    directory needs no label of its own; nor do flannel's conflist and state directories."""
    for machine in example_stack.machines:
        paths = container_file_paths(machine)
        assert not any(p == NODE_CNI_BIN_DIR or NODE_CNI_BIN_DIR.startswith(p + "/") for p in paths)
        assert "/etc/cni/net.d" not in paths and "/run/flannel" not in paths


# ------------------------------------------------------------------------------- 2. the units


@pytest.mark.parametrize("name", ROLES)
def test_runtime_units_as_fedora_coreos_ships_them(
    name: str, example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """containerd.service is Fedora CoreOS's own unit, only enabled (Ignition 3.3's `enabled`
    without contents writes a preset, coreos/ignition docs/configuration-v3_3.md); docker.service
    is masked, as Typhoon masks it (poseidon/typhoon fedora-coreos butane), so no second
    container engine runs beside the kubelet's. The setup unit orders itself after containerd."""
    found = units(config_of(example_stack, name, material))
    assert found["containerd.service"] == {"name": "containerd.service", "enabled": True}
    assert found["docker.service"] == {"name": "docker.service", "mask": True}
    setup = unit_directives(found["stubernetes-setup.service"]["contents"])
    assert "containerd.service" in " ".join(setup["Unit.After"]).split()
    assert "containerd.service" in " ".join(setup["Unit.Wants"]).split()


@pytest.mark.parametrize("name", ROLES)
def test_the_kubelet_unit_runs_the_downloaded_kubelet_with_kubeadms_drop_in(
    name: str, example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Kubernetes' own unit and kubeadm drop-in for installs without a package manager
    (kubernetes/release cmd/krel/templates/latest/kubelet/kubelet.service and
    kubeadm/10-kubeadm.conf, which run /usr/bin/kubelet), with the kubelet where Ignition
    writes it. The drop-in's files are kubeadm's: bootstrap-kubelet.conf and kubelet.conf in
    /etc/kubernetes, config.yaml and kubeadm-flags.env (which sets KUBELET_KUBEADM_ARGS) in
    /var/lib/kubelet (kubernetes v1.36.3 cmd/kubeadm/app/constants/constants.go). kubeadm's
    preflight warns when the kubelet service is not enabled (checks.go ServiceCheck)."""
    config = config_of(example_stack, name, material)
    kubelet = units(config)["kubelet.service"]
    assert kubelet["enabled"] is True
    unit = unit_directives(kubelet["contents"])
    assert unit["Service.ExecStart"] == [KUBELET]
    assert unit["Service.Restart"] == ["always"]
    assert unit["Install.WantedBy"] == ["multi-user.target"]
    (drop_in,) = kubelet["dropins"]
    assert drop_in["name"] == "10-kubeadm.conf"
    service = unit_directives(drop_in["contents"])
    assert service["Service.Environment"] == [
        '"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf'
        ' --kubeconfig=/etc/kubernetes/kubelet.conf"',
        '"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
    ]
    assert service["Service.EnvironmentFile"] == [
        "-/var/lib/kubelet/kubeadm-flags.env",
        "-/etc/sysconfig/kubelet",
    ]
    # An empty ExecStart= resets the unit's own, then the one command line (systemd.service(5)).
    assert service["Service.ExecStart"] == [
        "",
        f"{KUBELET} $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS "
        "$KUBELET_EXTRA_ARGS",
    ]
    assert remote_files(config)[KUBELET]["mode"] == 0o755


def test_the_drop_in_reads_as_systemd_reads_it(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """The unit texts are INI as systemd reads them: no line outside a section."""
    kubelet = units(config_of(example_stack, "w1", material))["kubelet.service"]
    for text in (kubelet["contents"], kubelet["dropins"][0]["contents"]):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(text)
        assert "ExecStart" in parser["Service"]


# -------------------------------------------------------------------------- 3. the downloads


@pytest.mark.parametrize("name", ROLES)
def test_every_role_downloads_the_binaries_it_runs_with_their_digests(
    name: str, example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Five remote files per machine, each with `verification.hash` "sha256-<hex>": Ignition
    hashes what it fetched and refuses the file, and with it the boot, unless the hex it
    encodes equals the text given (coreos/ignition v2.24.0 internal/util/verification.go
    AssertValid; spec 3.3 accepts sha256, config/v3_3/types/verification.go). The digests are
    the stack's (stackconfig: pinned or supplied), the URLs the upstream releases'."""
    release = example_stack.cluster.kubernetes_release
    digests = example_stack.cluster.binary_digests
    found = remote_files(config_of(example_stack, name, material))
    expected = {
        f"/usr/local/bin/{binary}": (
            f"{KUBERNETES_DOWNLOADS}/v{release}/bin/linux/amd64/{binary}",
            digests[binary],
            0o755,
        )
        for binary in ("kubeadm", "kubectl", "kubelet")
    }
    expected[CNI_ARCHIVE_PATH] = (CNI_DOWNLOAD, digests["cni-plugins"], 0o644)
    # crictl, which the certificate renewal restarts the static pods with (kubernetes-sigs/
    # cri-tools' release: crictl-v<version>-linux-amd64.tar.gz).
    expected[CRICTL_ARCHIVE_PATH] = (CRICTL_DOWNLOAD, digests["crictl"], 0o644)
    assert {
        path: (
            entry["contents"]["source"],
            entry["contents"]["verification"]["hash"].removeprefix("sha256-"),
            entry["mode"],
        )
        for path, entry in found.items()
    } == expected
    assert all(e["contents"]["verification"]["hash"].startswith("sha256-") for e in found.values())
    assert all(e["overwrite"] is True for e in found.values())


def test_the_example_stack_downloads_the_pinned_1_36_4(example_stack: StackConfig) -> None:
    """The pinned digests are dl.k8s.io's `.sha256` files, as kubespray records them
    (roles/kubespray_defaults/vars/main/checksums.yml at 46dbdd3994b32640bcd806b0097f50e8fdf1d514,
    amd64, 1.36.4: the newest patch it lists), and the CNI plugins' release's .sha256 file for
    v1.9.1; spot-checked here against those sources."""
    assert example_stack.cluster.kubernetes_release == "1.36.4"
    assert example_stack.cluster.binary_digests == {
        "kubeadm": "10d054585907f2c8bb823c84f6a66b3bd2a474c3d795475f04e9a44f78650fe6",
        "kubectl": "8b8f088da2dab964f853b38464033b1be15ede2839eca751482357c45abdd05a",
        "kubelet": "cf2562db46c48ab84cc3791540778ee7fb1a0a008529adbb434723dd02ed8b4b",
        "cni-plugins": "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303",
        # kubespray's crictl_checksums, amd64, 1.36.0 (cri-tools' release .sha256).
        "crictl": "83855e114566a8a8c44c548d515670f51de3a5e1da8b2effb59870e2f10c25a3",
    }


def test_cached_install_fetches_the_same_files_from_matchbox(
    example_values: dict[str, Any], example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """With `cachedInstall` every download comes from Matchbox's /assets/ (served from its
    -assets-path: poseidon/matchbox matchbox/http/server.go), in the upstream layout, under the
    same digests: only the source changes."""
    values = copy.deepcopy(example_values)
    values["os"]["cachedInstall"] = True
    cached = parse_stack_config(values)
    http = cached.matchbox.http_endpoint
    release = cached.cluster.kubernetes_release
    for name in ROLES:
        found = remote_files(config_of(cached, name, material))
        upstream = remote_files(config_of(example_stack, name, material))
        assert {p: e["contents"]["source"] for p, e in found.items()} == {
            **{
                f"/usr/local/bin/{b}": f"{http}/assets/kubernetes/v{release}/bin/linux/amd64/{b}"
                for b in ("kubeadm", "kubectl", "kubelet")
            },
            CNI_ARCHIVE_PATH: f"{http}/assets/cni-plugins/v{CNI_PLUGINS_RELEASE}/{CNI_ARCHIVE}",
            CRICTL_ARCHIVE_PATH: (
                f"{http}/assets/cri-tools/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz"
            ),
        }
        assert {p: e["contents"]["verification"] for p, e in found.items()} == {
            p: e["contents"]["verification"] for p, e in upstream.items()
        }


def test_the_setup_checks_the_archive_ignition_checked(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """phase-node checks the archive's sha256 again before it unpacks it (it has lain on a
    writable disk since Ignition wrote it): the same path and digest as the download entry,
    unpacked into the directory containerd searches."""
    config = config_of(example_stack, "w1", material)
    env = setup_env(config)
    archive = remote_files(config)[CNI_ARCHIVE_PATH]
    assert env["CNI_PLUGINS_ARCHIVE"] == CNI_ARCHIVE_PATH
    assert f"sha256-{env['CNI_PLUGINS_SHA256']}" == archive["contents"]["verification"]["hash"]
    assert env["CNI_PLUGINS_VERSION"] == CNI_PLUGINS_RELEASE
    assert env["CNI_BIN_DIR"] == NODE_CNI_BIN_DIR
    assert env["CRI_SERVICE"] == "containerd.service"
    assert env["KUBERNETES_RELEASE"] == example_stack.cluster.kubernetes_release
    for gone in ("PACKAGES", "KUBERNETES_MINOR", "PACKAGES_TIMEOUT_SECONDS"):
        assert gone not in env
    crictl = remote_files(config)[CRICTL_ARCHIVE_PATH]
    assert env["CRICTL_ARCHIVE"] == CRICTL_ARCHIVE_PATH
    assert f"sha256-{env['CRICTL_SHA256']}" == crictl["contents"]["verification"]["hash"]
    phase = file_text(config, "/usr/local/lib/stubernetes/phase-node")
    assert '"$sha256" "$archive" | sha256sum --check --status' in phase
    assert '--file "$archive" --directory "$directory"' in phase
    unpacks = [line for line in phase.splitlines() if line.startswith("unpack ")]
    assert unpacks == [
        'unpack cni-plugins "$CNI_PLUGINS_VERSION" "$CNI_PLUGINS_ARCHIVE" "$CNI_PLUGINS_SHA256" '
        '"$CNI_BIN_DIR"',
        'unpack crictl "$CRICTL_VERSION" "$CRICTL_ARCHIVE" "$CRICTL_SHA256" /usr/local/bin',
    ]


def test_supplied_digests_are_the_ones_the_nodes_check(
    example_values: dict[str, Any], material: ClusterMaterial
) -> None:
    """A release without pinned digests runs on the stack's own: every check, Ignition's and the
    setup's, asks for them."""
    supplied = {"kubeadm": "a" * 64, "kubectl": "b" * 64, "kubelet": "c" * 64}
    supplied["cniPlugins"] = "d" * 64
    supplied["crictl"] = "e" * 64
    stack = with_values(example_values, kubernetesVersion="1.37.2", binarySha256=supplied)
    config = config_of(stack, "c1", material)
    hashes = {p: e["contents"]["verification"]["hash"] for p, e in remote_files(config).items()}
    assert hashes == {
        "/usr/local/bin/kubeadm": f"sha256-{'a' * 64}",
        "/usr/local/bin/kubectl": f"sha256-{'b' * 64}",
        "/usr/local/bin/kubelet": f"sha256-{'c' * 64}",
        CNI_ARCHIVE_PATH: f"sha256-{'d' * 64}",
        CRICTL_ARCHIVE_PATH: f"sha256-{'e' * 64}",
    }
    assert setup_env(config)["CNI_PLUGINS_SHA256"] == "d" * 64
    assert setup_env(config)["CRICTL_SHA256"] == "e" * 64


@pytest.mark.parametrize("version", ["1.36", "1.36.3", "1.35"])
def test_kubeadm_kubelet_and_the_control_plane_are_one_release(
    example_values: dict[str, Any], material: ClusterMaterial, version: str
) -> None:
    """kubeadm's preflight checks the kubelet's version against `kubernetesVersion`
    (checks.go KubeletVersionCheck), and the control plane's images follow it: every URL and
    the kubeadm config name the one resolved release."""
    stack = with_values(example_values, kubernetesVersion=version)
    release = stack.cluster.kubernetes_release
    assert kubernetes_version(stack) == f"v{release}"
    sources = [
        e["contents"]["source"]
        for e in remote_files(config_of(stack, "c1", material)).values()
        if e["path"] not in (CNI_ARCHIVE_PATH, CRICTL_ARCHIVE_PATH)
    ]
    assert len(sources) == 3
    assert all(f"/release/v{release}/bin/linux/amd64/" in s for s in sources)


# ------------------------------------------------------------------ 4. kubeadm's preflight


def test_kubeadms_preflight_needs_nothing_layered(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    """kubeadm 1.36's preflight (kubernetes cmd/kubeadm/app/preflight/checks_linux.go
    addExecChecks, at v1.36.3) requires in PATH: `conntrack` only for Kubernetes < 1.32 (kube-
    proxy no longer needs it, kubernetes/kubernetes#126952), then `losetup`, `mount` and `cp`;
    the old ip, iptables, nsenter, ebtables, ethtool, socat, tc and touch checks are gone. It
    reaches the runtime through the CRI socket (checks.go ContainerRuntimeCheck), not crictl, and
    checks /proc/sys/net/ipv4/ip_forward is 1 (addIPv4Checks), swap, the kernel configuration
    and cgroups (SystemVerificationCheck). Fedora CoreOS ships util-linux (losetup, mount),
    coreutils (cp), iproute, iptables-nft, socat and ethtool (coreos/fedora-coreos-config
    manifest-lock.x86_64.json). So with every supported minor at 1.32 or later, neither
    conntrack-tools nor cri-tools is needed, and nothing is layered: no repository file, no
    rpm-ostree call, no reboot for one."""
    assert all(tuple(map(int, m.split("."))) >= (1, 32) for m in SUPPORTED_KUBERNETES_MINORS)
    for name in ROLES:
        config = config_of(example_stack, name, material)
        paths = [f["path"] for f in config["storage"]["files"]]
        assert not [p for p in paths if p.startswith("/etc/yum.repos.d/")]
        scripts = [
            file_text(config, p)
            for p in paths
            if p.startswith(("/usr/local/lib/stubernetes/", "/usr/local/bin/stubernetes"))
        ]
        assert scripts
        commands = [
            line
            for text in scripts
            for line in text.splitlines()
            if not line.lstrip().startswith("#")
        ]
        assert not [line for line in commands if "rpm-ostree" in line]


def test_ip_forwarding_is_on_for_kubeadms_preflight(
    example_stack: StackConfig, material: ClusterMaterial
) -> None:
    config = config_of(example_stack, "w1", material)
    sysctl = file_text(config, "/etc/sysctl.d/90-stubernetes.conf")
    assert "net.ipv4.ip_forward = 1" in sysctl.splitlines()


# ------------------------------------------------------------------------------- 5. SELinux


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
        if f["path"].startswith("/usr/local/") and f["contents"]["source"].startswith("data:")
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


# ------------------------------------------------------------------- 6. kernel arguments


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
