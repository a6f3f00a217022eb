"""The real containerd (v2.2.9, tool "containerd") with every machine's /etc/containerd/config.toml.

The file is schema version 2; containerd 2.x migrates it in memory to version 3 when it loads
it, the CRI plugin's section splitting into `io.containerd.cri.v1.runtime` and
`io.containerd.cri.v1.images` (containerd v2.2.9 `plugins/cri/runtime/plugin.go` and
`plugins/cri/images/plugin.go` configMigration; at daemon start
`cmd/containerd/server/server.go` New runs the same migrations). `config dump` shows the result
(tests/real/containerd_daemon.py); the daemon, started for a scratch root, answers the CRI
calls the kubelet makes (tests/real/cri_client.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from containerd_daemon import NODE_CONFIG, config_dump, start_containerd
from control_plane.kubeadm import kubeadm
from control_plane.program_output import KUBEADM_CONFIG, ProgramOutput, render_program
from cri_client import CriClient, cri_stubs
from repo_paths import REPO
from tool_cache import tool_bin, tool_version

from stackconfig.releases import deep_merge

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        tool_bin("containerd", "containerd") is None, reason="run ./scripts/tools containerd"
    ),
]

RUNTIME = "io.containerd.cri.v1.runtime"
CORE_CHART = "charts/stubernetes-core"
# The kubelet's side of the CNI: flannel's DaemonSet writes its conflist to the conf dir and
# copies its plugin into the bin dir (charts/stubernetes-core flannel-daemonset.yaml).
FLANNEL_CONF = "/etc/cni/net.d"


@pytest.fixture(scope="module")
def output(example_values: dict[str, Any]) -> ProgramOutput:
    return render_program(example_values)


def _node_config(output: ProgramOutput) -> bytes:
    """The one containerd config every machine's Ignition carries."""
    configs = {m.files[NODE_CONFIG].contents for m in output.machines.values()}
    assert len(configs) == 1, "machines got different containerd configs"
    (config,) = configs
    return config


def _setup_env(text: str) -> dict[str, str]:
    """setup.env's NAME=value lines."""
    lines = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _cri_socket(output: ProgramOutput, name: str) -> str:
    documents = output.machines[name].kubeadm_documents()
    kind = "InitConfiguration" if "InitConfiguration" in documents else "JoinConfiguration"
    return str(documents[kind]["nodeRegistration"]["criSocket"])


def _flannel(output: ProgramOutput) -> dict[str, Any]:
    """flannel's values as Helm merges them: the chart's defaults under the program's."""
    (core,) = [r for r in output.releases.values() if r["chart"] == CORE_CHART]
    defaults = yaml.safe_load((REPO / CORE_CHART / "values.yaml").read_text())["flannel"]
    return deep_merge(defaults, core["values"]["flannel"])


def test_containerd_loads_every_machines_config_as_the_node_needs(
    output: ProgramOutput, tmp_path: Path
) -> None:
    """`config dump` exits 0 and warns about nothing (no unknown key at the top level or in a
    plugin's section: containerd_daemon.py), and the migrated config is what the rest of the
    node expects: SELinux labels on, the systemd cgroup driver on the default runtime (the
    kubelet's cgroupDriver, kubeadm's default `systemd`), the gRPC socket at each machine's
    kubeadm criSocket, the CNI plugins where the setup service unpacks them and flannel copies
    its own, and the CNI config where flannel writes it."""
    config = tmp_path / "config.toml"
    config.write_bytes(_node_config(output))
    dump = config_dump(config)
    assert dump.returncode == 0, dump.report()
    assert dump.warnings() == [], dump.report()
    dumped = dump.config
    assert dumped["version"] == 3
    assert (dumped["root"], dumped["state"]) == ("/var/lib/containerd", "/run/containerd")
    address = dumped["grpc"]["address"]
    for name in output.machines:
        assert _cri_socket(output, name) == f"unix://{address}", name

    runtime = dumped["plugins"][RUNTIME]
    assert runtime["enable_selinux"] is True
    default = runtime["containerd"]["default_runtime_name"]
    runc = runtime["containerd"]["runtimes"][default]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    # containerd 2.2 renamed bin_dir to the list bin_dirs; a schema-2 bin_dir migrates into it.
    assert runtime["cni"]["bin_dir"] == ""
    bin_dirs, conf_dir = runtime["cni"]["bin_dirs"], runtime["cni"]["conf_dir"]
    for name, machine in output.machines.items():
        env = _setup_env(machine.files["/etc/stubernetes/setup.env"].contents.decode())
        assert env["CNI_BIN_DIR"] in bin_dirs, name
    flannel = _flannel(output)
    assert flannel["cniBinDir"] in bin_dirs
    assert conf_dir == FLANNEL_CONF == flannel["cniConfDir"]


def test_the_dump_shows_what_the_file_sets(output: ProgramOutput, tmp_path: Path) -> None:
    """The checks above can fail: a key the CRI plugin does not know is warned about
    ("Ignoring unknown key in TOML for plugin": `cmd/containerd/server/config/config.go`
    Config.Decode), a schema-2 `bin_dir` the file sets becomes `bin_dirs` (not the default:
    `plugins/cri/runtime/plugin.go` migrateConfig), and SystemdCgroup follows the file."""
    node = _node_config(output).decode()
    cri = '[plugins."io.containerd.grpc.v1.cri"]\n'
    assert cri in node
    planted = node.replace(cri, cri + "enable_selinuxx = true\n", 1)
    planted += '\n[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = "/var/lib/cni/bin"\n'
    planted = planted.replace("SystemdCgroup = true", "SystemdCgroup = false")
    config = tmp_path / "planted.toml"
    config.write_text(planted)
    dump = config_dump(config)
    assert dump.returncode == 0, dump.report()
    (warning,) = dump.warnings()
    assert "Ignoring unknown key in TOML for plugin" in warning and "enable_selinuxx" in warning
    runtime = dump.config["plugins"][RUNTIME]
    assert runtime["cni"]["bin_dirs"] == ["/var/lib/cni/bin"]
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False


# ---------------------------------------------------------------------------- the daemon

# What containerd logs at warning level or above when it starts with the node's file on this
# host, each for a reason outside the file's control:
EXPLAINED = {
    # The file is schema 2 (for containerd 1.7 as for 2.x): `cmd/containerd/server/server.go`.
    "Configuration migrated from version 2": "schema 2, migrated in memory",
    # This host has no SELinux; Fedora CoreOS runs it enforcing (internal/cri/server/service.go).
    "Selinux is not supported": "no SELinux on this host",
    # No CNI config until flannel's DaemonSet writes its conflist (`NetworkReady` stays false
    # until then, which kubeadm's CRI check does not look at).
    "failed to load cni during init": "no CNI config before flannel runs",
}
# The deprecation the host itself can cause: cgroup v1 (containerd `pkg/deprecation`); Fedora
# CoreOS runs cgroup v2 only.
HOST_DEPRECATIONS = (
    set()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists()
    else {"io.containerd.deprecation/cgroup-v1"}
)


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the daemon needs root (mounts, chown)")
    if shutil.which("unshare") is None:
        pytest.skip("util-linux unshare is missing")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short path: the gRPC socket under it must fit a unix socket address (108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="stubernetes-ctrd-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _root_with(config: bytes, scratch: Path) -> Path:
    root = scratch / "root"
    target = root / NODE_CONFIG.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(config)
    return root


def test_containerd_serves_the_kubelets_cri_with_the_nodes_config(
    output: ProgramOutput, scratch: Path
) -> None:
    """containerd starts with the node's file (re-rooted into a scratch root) and answers on
    its socket: `ctr version` names the server v2.2.9, every CRI plugin loads, and the CRI calls
    the kubelet makes answer as the node needs: Version, Status with RuntimeReady (what
    kubeadm's CRI preflight check asks: kubernetes `cmd/kubeadm/app/util/runtime/runtime.go`
    IsRunning), Status's verbose config, and RuntimeConfig, from which the kubelet takes its
    cgroup driver (kubernetes `cmd/kubelet/app/server.go` getCgroupDriverFromCRI;
    containerd `internal/cri/server/runtime_config_linux.go` getCgroupDriver reads the default
    runtime's SystemdCgroup)."""
    _needs_root()
    root = _root_with(_node_config(output), scratch)
    daemon = start_containerd(root, scratch / "work")
    try:
        version = daemon.ctr("version")
        assert version.returncode == 0, version.stderr
        server = version.stdout.partition("Server:")[2]
        assert f"Version:  {tool_version('containerd')}" in server, version.stdout
        plugins = daemon.ctr("plugins", "ls")
        status = {
            f"{kind}.{name}": state
            for kind, name, *_, state in (line.split() for line in plugins.stdout.splitlines()[1:])
        }
        for plugin in ("io.containerd.grpc.v1.cri", RUNTIME, "io.containerd.cri.v1.images"):
            assert status.get(plugin) == "ok", plugins.stdout

        client = CriClient(daemon.socket, cri_stubs(scratch / "cri-stubs"))
        try:
            assert client.version()["runtime_name"] == "containerd"
            answer = client.status()
            conditions = {c["type"]: c for c in answer["status"]["conditions"]}
            assert conditions["RuntimeReady"]["status"] is True
            assert conditions["NetworkReady"].get("status", False) is False
            assert conditions["NetworkReady"]["reason"] == "NetworkPluginNotReady"
            # Its message is a JSON object, deprecation ID to text (internal/cri/server/status.go).
            deprecations = conditions["ContainerdHasNoDeprecationWarnings"]
            named = set(json.loads(deprecations["message"] or "{}"))
            assert named <= HOST_DEPRECATIONS, deprecations
            assert deprecations["status"] is (not named), deprecations
            config = client.status_config()
            assert config["enableSelinux"] is True
            runc = config["containerd"]["runtimes"][config["containerd"]["defaultRuntimeName"]]
            assert runc["options"]["SystemdCgroup"] is True
            assert config["cni"]["binDirs"] == [str(root / "opt/cni/bin")]
            assert config["cni"]["confDir"] == str(root / FLANNEL_CONF.lstrip("/"))
            assert client.runtime_config()["linux"]["cgroup_driver"] == "SYSTEMD"
        finally:
            client.close()
    finally:
        daemon.stop()
    log = daemon.process.log.read_text()
    loud = [line for line in log.splitlines() if re.search(r"level=(warning|error|fatal)", line)]
    unexplained = [line for line in loud if not any(cause in line for cause in EXPLAINED)]
    assert unexplained == [], "\n".join(unexplained)


def test_the_kubelets_cgroup_driver_follows_systemd_cgroup(
    output: ProgramOutput, scratch: Path
) -> None:
    """The same daemon with SystemdCgroup = false answers CGROUPFS, so SYSTEMD above comes from
    the node's file."""
    _needs_root()
    node = _node_config(output).decode()
    assert "SystemdCgroup = true" in node
    root = _root_with(
        node.replace("SystemdCgroup = true", "SystemdCgroup = false").encode(), scratch
    )
    daemon = start_containerd(root, scratch / "work")
    try:
        client = CriClient(daemon.socket, cri_stubs(scratch / "cri-stubs"))
        try:
            assert client.runtime_config()["linux"]["cgroup_driver"] == "CGROUPFS"
        finally:
            client.close()
    finally:
        daemon.stop()


def test_containerds_sandbox_image_is_kubeadms(output: ProgramOutput, tmp_path: Path) -> None:
    """kubeadm pre-pulls its own pause image and recommends the runtime use the same one
    (kubernetes `cmd/kubeadm/app/preflight/checks.go` ImagePullCheck). It cannot see
    containerd 2's (the CRI status config has no sandboxImage any more: `cmd/kubeadm/app/util/
    runtime/runtime.go` SandboxImage fails and is logged at V(4) only), so this compares them
    here: the image `kubeadm config images list` names against the one in the node's config.
    containerd v2.2.9's default would differ (pause:3.10.1, internal/cri/config/config.go
    DefaultSandboxImage, against kubeadm v1.36.3's 3.10.2): the node's config names kubeadm's."""
    config = tmp_path / "config.toml"
    config.write_bytes(_node_config(output))
    dump = config_dump(config)
    assert dump.returncode == 0, dump.report()
    sandbox = dump.config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
    init = output.init_controller
    kubeadm_config = tmp_path / "kubeadm.yaml"
    kubeadm_config.write_bytes(init.files[KUBEADM_CONFIG].contents)
    listed = kubeadm(["config", "images", "list", f"--config={kubeadm_config}"]).stdout.split()
    (pause,) = [image for image in listed if image.startswith("registry.k8s.io/pause:")]
    assert sandbox == pause
