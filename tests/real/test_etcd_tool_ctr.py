"""etcd-tool (ignition/files/backup/etcd-tool), as a controller runs it: etcdctl and etcdutl from
etcd's image through containerd's ctr, against an etcd that serves TLS only.

Real: containerd v2.2.9 with the node's /etc/containerd/config.toml (tests/real/
containerd_daemon.py), its runc shim (tool "containerd-shim"), runc (Debian's package), ctr,
etcd with kubeadm's own etcd PKI (`kubeadm init phase certs`, tool "kubernetes"), and the
controller's etcd-tool, etcd-backup, backup-lib.sh, backup.env and backup key as its Ignition
carries them (the rendered tests/offline/backup-stack.yaml), run unmodified.

Stand-ins:
- the image: no registry is reachable, so the image named as backup.env's ETCD_IMAGE names it
  is an OCI archive of one layer (tests/lab/oci_archive.py) holding the etcd tool build's
  etcdctl and etcdutl (its release, not the image's tag) in /usr/local/bin with the image's
  WorkingDir (etcd-io/etcd Dockerfile: ADD etcdctl, etcdutl /usr/local/bin/, WORKDIR
  /var/lib/etcd/; distroless's files and etcd itself, which etcd-tool never runs, are left
  out), imported with `ctr images import`. etcd-tool then finds it ready and does not pull:
  the pull path is not run (nothing but loopback is reachable here, so a pull would fail).
- the controller's paths: /etc/kubernetes/pki/etcd, /etc/stubernetes/backup.key and /var/lib
  exist only in a mount namespace of the test's own (an overlay over /etc, a scratch
  directory over /var/lib), where containerd, its shims and runc run and where etcd-tool runs
  ctr, so that the mounts ctr asks for resolve as on the controller; etcd and containerd share
  a network namespace whose only device is loopback (tests/real/control_plane/netns.py), which
  is what `--net-host` gives the container.

cgroups: cgroupfs, runc's default: `ctr run` asks for no systemd cgroup (that is the runc
option SystemdCgroup, which only the CRI's runtime config sets here) and gives the container the
cgroup path /<namespace>/<id> (containerd v2.2.9 `pkg/oci/spec.go` populateDefaultUnixSpec); this
host has cgroup v1 hierarchies and no systemd.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from containerd_daemon import NODE_CONFIG, Containerd, ctr_binary, start_containerd
from control_plane.kubeadm import kubeadm_binary
from control_plane.netns import NetworkNamespace, start_network_namespace
from control_plane.program_output import ignition_files
from lab import oci_archive
from real_process import RealProcess, start
from repo_paths import REPO
from tool_cache import require_tool, tool_bin, tool_version

from ignition.etcd_backup import BACKUP_ENV, BACKUP_KEY, BACKUP_LIB, etcd_tool_image
from stackconfig import parse_stack_config
from stackconfig.stackfile import read_stack_values
from stubernetes.cli import main

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        tool_bin("containerd-shim", "containerd-shim-runc-v2") is None
        or shutil.which("runc") is None,
        reason="run ./scripts/tools containerd-shim and install Debian's runc",
    ),
]

BACKUP_STACK = REPO / "tests/offline/backup-stack.yaml"
CONTROLLER = "lab-c1"
PKI = "/etc/kubernetes/pki/etcd"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# etcdctl's TLS flags as backup-lib.sh gives them, with backup.env's paths.
TLS = (f"--cacert={PKI}/ca.crt", f"--cert={PKI}/healthcheck-client.crt",
       f"--key={PKI}/healthcheck-client.key")  # fmt: skip
ENDPOINT = "--endpoints=https://127.0.0.1:2379"
KEYS = 25
# Sets up the controller's paths in the mount namespace containerd then starts in: $1 the
# overlay's upper directory (holding kubernetes/pki/etcd and stubernetes/backup.key), $2 its
# work directory, $3 the directory that stands for /var/lib.
CONTROLLER_PATHS = (
    'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc'
    ' && mount --bind "$3" /var/lib && shift 3 && exec "$@"'
)


@dataclass
class Controller:
    work: Path
    env: dict[str, str]
    settings: dict[str, str]
    scripts: Path
    var_lib: Path
    daemon: Containerd
    etcd: RealProcess
    netns: NetworkNamespace

    def inside(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`argv` in containerd's own mount and network namespaces, ctr on PATH and pointed at
        its socket, as root on the controller."""
        pid = self.daemon.process.process.pid
        wrapped = ["nsenter", f"--mount=/proc/{pid}/ns/mnt", f"--net=/proc/{pid}/ns/net", "--"]
        return subprocess.run(
            [*wrapped, *argv],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def etcd_tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.inside(
            ["env", f"ETCD_IMAGE={self.settings['ETCD_IMAGE']}",
             f"STATE_DIR={self.settings['STATE_DIR']}", str(self.scripts / "etcd-tool"), *args]
        )  # fmt: skip

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.inside(["ctr", "--namespace", "k8s.io", *args])

    def host_path(self, path: str) -> Path:
        """Where a path under the controller's /var/lib is on this host."""
        return self.var_lib / Path(path).relative_to("/var/lib")


def _render(work: Path) -> dict[str, bytes]:
    """The controller's files, as its Ignition carries them."""
    out = work / "render"
    assert main(["render", "--stack-file", str(BACKUP_STACK), "--out", str(out)]) == 0
    config = json.loads((out / f"matchbox/ignition/{CONTROLLER}.ign").read_bytes())
    return {path: file.contents for path, file in ignition_files(config).items()}


def _env_lines(text: bytes) -> dict[str, str]:
    lines = [line for line in text.decode().splitlines() if "=" in line and line[0] != "#"]
    return {key: shlex.split(value)[0] if value else "" for key, value in
            (line.split("=", 1) for line in lines)}  # fmt: skip


def _etcd_pki(cert_dir: Path) -> None:
    """kubeadm's etcd CA, serving and health-check client certificates (what a controller's
    /etc/kubernetes/pki/etcd holds; the release given so kubeadm does not look it up)."""
    for phase in ("etcd-ca", "etcd-server", "etcd-healthcheck-client"):
        subprocess.run(
            [str(kubeadm_binary()), "init", "phase", "certs", phase, "--cert-dir", str(cert_dir),
             "--kubernetes-version", tool_version("kubernetes")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def _etcd_argv(data_dir: Path, pki: Path) -> list[str]:
    """etcd serving clients over TLS only, with a client certificate required, as kubeadm's
    static pod runs it (kubernetes cmd/kubeadm/app/phases/etcd/local.go getEtcdCommand)."""
    return [
        str(require_tool("etcd", "etcd")),
        "--name=c1",
        f"--data-dir={data_dir}",
        "--listen-client-urls=https://127.0.0.1:2379",
        "--advertise-client-urls=https://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=c1=http://127.0.0.1:2380",
        "--client-cert-auth=true",
        f"--trusted-ca-file={pki}/ca.crt",
        f"--cert-file={pki}/server.crt",
        f"--key-file={pki}/server.key",
    ]


def _host_etcdctl(
    netns: NetworkNamespace, pki: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """etcdctl of the etcd tool build, beside etcd, with the host's copy of the PKI."""
    tls = [f"--cacert={pki}/ca.crt", f"--cert={pki}/healthcheck-client.crt",
           f"--key={pki}/healthcheck-client.key"]  # fmt: skip
    return netns.run([str(require_tool("etcd", "etcdctl")), ENDPOINT, *tls, *args])


def _write_image(dest: Path, name: str) -> None:
    binaries = {
        "etcdctl": require_tool("etcd", "etcdctl"),
        "etcdutl": require_tool("etcdutl", "etcdutl"),
    }
    layer = {
        f"usr/local/bin/{tool}": oci_archive.LayerFile(path.read_bytes(), 0o755)
        for tool, path in binaries.items()
    }
    oci_archive.write_oci_archive(dest, name, layer, {"WorkingDir": "/var/lib/etcd/"})


def _shims(socket: Path) -> list[int]:
    """The runc shims of this containerd: each names its daemon's socket on its command line
    (containerd v2.2.9 `pkg/shim/util.go` Command: `-address`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    if os.geteuid() != 0:
        pytest.skip("containerd and runc run as root")
    work = tmp_path_factory.mktemp("etcd-tool")
    files = _render(work)
    scripts = work / "scripts"
    scripts.mkdir()
    for name in ("etcd-tool", "etcd-backup", "backup-lib.sh"):
        (scripts / name).write_bytes(files[f"{BACKUP_LIB}/{name}"])
        (scripts / name).chmod(0o755)
    settings = _env_lines(files[BACKUP_ENV])
    # The controller's /etc as the overlay's upper layer: its etcd PKI and backup key.
    upper, overlay_work, var_lib = work / "etc", work / "etc-work", work / "var-lib"
    for directory in (upper, overlay_work, var_lib):
        directory.mkdir()
    _etcd_pki(upper / "kubernetes/pki")
    (upper / "stubernetes").mkdir()
    (upper / BACKUP_KEY.removeprefix("/etc/")).write_bytes(files[BACKUP_KEY])
    root = work / "root"
    (root / NODE_CONFIG.lstrip("/")).parent.mkdir(parents=True)
    (root / NODE_CONFIG.lstrip("/")).write_bytes(files[NODE_CONFIG])
    cgroups_before = {p for p in CGROUP_ROOT.glob("*/k8s.io")}

    netns = start_network_namespace([], work / "logs")
    etcd = daemon = None
    try:
        host_pki = upper / "kubernetes/pki/etcd"
        etcd = start(
            "etcd",
            netns.wrap(_etcd_argv(work / "etcd-data", host_pki)),
            work / "logs",
            lambda: _host_etcdctl(netns, host_pki, "endpoint", "health").returncode == 0,
        )
        # containerd finds the shim on PATH (core/runtime/v2/shim_manager.go
        # resolveRuntimePath); the shim runs `runc` from PATH.
        shim = require_tool("containerd-shim", "containerd-shim-runc-v2")
        path = f"{shim.parent}:{os.environ['PATH']}"
        paths = [CONTROLLER_PATHS, "sh", str(upper), str(overlay_work), str(var_lib)]

        def wrap(argv: Sequence[str]) -> list[str]:
            mount_ns = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", *paths]
            return netns.wrap(["env", f"PATH={path}", *mount_ns, *argv])

        daemon = start_containerd(root, work / "containerd", wrap)
        env = {
            **os.environ,
            "PATH": f"{ctr_binary().parent}:{os.environ['PATH']}",
            "CONTAINERD_ADDRESS": str(daemon.socket),
        }
        controller = Controller(work, env, settings, scripts, var_lib, daemon, etcd, netns)
        # etcd-tool binds STATE_DIR, which must then exist: etcd-backup and etcd-restore make
        # it (backup-lib.sh make_work) before they run etcd-tool.
        controller.host_path(settings["STATE_DIR"]).mkdir(mode=0o700, parents=True)
        yield controller
    finally:
        if daemon is not None:
            daemon.stop()
            # A shim outlives a daemon that stops (it runs in a process group of its own):
            # any left would be a container `ctr run --rm` did not clean up.
            for pid in _shims(daemon.socket):
                os.kill(pid, signal.SIGKILL)
        if etcd is not None:
            etcd.stop()
        netns.stop()
        # runc's cgroupfs driver leaves the namespace's parent cgroup in each hierarchy.
        for parent in {p for p in CGROUP_ROOT.glob("*/k8s.io")} - cgroups_before:
            for child in sorted(parent.glob("**/"), key=lambda p: -len(p.parts)):
                child.rmdir()


@pytest.fixture(scope="module")
def imported(controller: Controller) -> float:
    """The image archive imported into containerd's namespace k8s.io, as kubeadm's images are;
    returns the import's seconds."""
    archive = controller.work / "etcd-image.tar"
    _write_image(archive, controller.settings["ETCD_IMAGE"])
    began = time.monotonic()
    done = controller.ctr("images", "import", str(archive))
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    print(f"{archive.stat().st_size // 2**20} MiB archive imported in {took:.1f} s")
    return took


def test_etcd_tool_finds_the_imported_image_and_runs_etcdctl_from_it(
    controller: Controller, imported: float
) -> None:
    image = controller.settings["ETCD_IMAGE"]
    assert image == etcd_tool_image(parse_stack_config(read_stack_values(BACKUP_STACK)[0]))
    ready = controller.ctr("images", "check", "--quiet", f"name=={image}")
    assert ready.stdout.split() == [image], ready.stdout + ready.stderr
    done = controller.etcd_tool("etcdctl", "version")
    assert done.returncode == 0, done.stderr
    assert f"etcdctl version: {tool_version('etcd').removeprefix('v')}" in done.stdout


def test_a_snapshot_is_saved_and_read_through_ctr(controller: Controller, imported: float) -> None:
    pki = controller.work / "etc/kubernetes/pki/etcd"
    for i in range(KEYS):
        assert _host_etcdctl(controller.netns, pki, "put", f"/kept/{i}", f"v{i}").returncode == 0
    snapshot = f"{controller.settings['STATE_DIR']}/through-ctr.db"
    began = time.monotonic()
    saved = controller.etcd_tool("etcdctl", ENDPOINT, *TLS, "snapshot", "save", snapshot)
    save_took = time.monotonic() - began
    assert saved.returncode == 0, saved.stderr
    assert controller.host_path(snapshot).stat().st_size > 0
    began = time.monotonic()
    status = controller.etcd_tool("etcdutl", "snapshot", "status", snapshot, "--write-out=json")
    status_took = time.monotonic() - began
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert facts["revision"] >= KEYS + 1 and facts["totalKey"] >= KEYS
    # `--rm`: no container, and no shim, outlives a run.
    assert controller.ctr("containers", "list", "--quiet").stdout.split() == []
    assert _shims(controller.daemon.socket) == []
    print(f"snapshot save {save_took:.2f} s, snapshot status {status_took:.2f} s through ctr "
          f"(revision {facts['revision']}, {facts['totalKey']} keys)")  # fmt: skip


def test_the_tools_exit_status_comes_back_and_the_pki_is_read_only(
    controller: Controller, imported: float
) -> None:
    missing = controller.etcd_tool("etcdutl", "snapshot", "status", "/var/lib/no-such.db")
    assert missing.returncode != 0
    no_client_cert = controller.etcd_tool(
        "etcdctl", ENDPOINT, TLS[0], "--dial-timeout=3s", "--command-timeout=5s",
        "endpoint", "status",
    )  # fmt: skip
    assert no_client_cert.returncode != 0
    into_pki = controller.etcd_tool("etcdctl", ENDPOINT, *TLS, "snapshot", "save", f"{PKI}/x.db")
    assert into_pki.returncode != 0
    assert "read-only file system" in into_pki.stderr, into_pki.stderr


def test_etcd_backup_takes_its_snapshot_through_etcd_tool(
    controller: Controller, imported: float
) -> None:
    """The controller's etcd-backup with its own settings, ETCD_TOOL the real etcd-tool; only
    the destination (a directory, no bucket) and the cluster record (none) differ."""
    destination = "/var/lib/stubernetes/snapshots"
    overrides = {"ETCD_TOOL": str(controller.scripts / "etcd-tool"), "S3_ENDPOINT": "",
                 "BACKUP_DIR": destination, "KUBECONFIG_FILE": ""}  # fmt: skip
    env_file = controller.work / "backup.env"
    env_file.write_text(
        "".join(f"{k}={shlex.quote(v)}\n" for k, v in {**controller.settings, **overrides}.items())
    )
    began = time.monotonic()
    done = controller.inside(
        ["env", f"BACKUP_ENV={env_file}", str(controller.scripts / "etcd-backup")]
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    last = json.loads(controller.host_path(f"{controller.settings['STATE_DIR']}/last-good.json")
                      .read_text())  # fmt: skip
    stored = controller.host_path(f"{destination}/{last['name']}")
    assert stored.stat().st_size == last["size"]
    plain = controller.work / "backup-check" / "snapshot.db"
    plain.parent.mkdir(mode=0o700)
    key = controller.work / "etc" / BACKUP_KEY.removeprefix("/etc/")
    subprocess.run(
        ["gpg", "--batch", "--quiet", "--homedir", str(plain.parent), "--pinentry-mode", "loopback",
         "--passphrase-file", str(key), "--decrypt", "--output", str(plain), str(stored)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    status = subprocess.run(
        [str(require_tool("etcdutl", "etcdutl")), "snapshot", "status", str(plain), "-w", "json"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    facts = json.loads(status.stdout)
    assert facts["revision"] == last["revision"] and facts["totalKey"] == last["keys"]
    assert last["keys"] >= KEYS
    print(f"etcd-backup through etcd-tool: {done.stderr.strip()} ({took:.1f} s)")


def test_an_image_not_there_is_pulled(controller: Controller, imported: float) -> None:
    """The pull runs as far as this host lets it: its command line is ctr's, and with nothing but
    loopback reachable the pull fails, and etcd-tool with it, saying so. (A pull that
    succeeds is not run.)"""
    absent = "gcr.io/etcd-development/etcd:v0.0.0-not-imported"
    done = controller.inside(
        ["env", f"ETCD_IMAGE={absent}", f"STATE_DIR={controller.settings['STATE_DIR']}",
         str(controller.scripts / "etcd-tool"), "etcdctl", "version"]
    )  # fmt: skip
    assert done.returncode != 0
    assert "flag provided but not defined" not in done.stderr, done.stderr
    assert "gcr.io" in done.stderr, done.stderr
    assert controller.ctr("images", "list", "--quiet", f"name=={absent}").stdout.split() == []
    print(f"pull without a registry: {done.stderr.strip().splitlines()[-1]}")


def test_the_running_etcds_release_chooses_the_image(
    controller: Controller, imported: float
) -> None:
    """On a controller whose etcd kubeadm runs from a manifest (an upgrade in place may have
    moved it to a newer etcd than its backup.env names), etcd-tool takes etcd's own image of
    that release: here backup.env's image is one that is not there (its pull would fail, as
    above), the manifest names the release the imported archive is tagged with, and the tool
    runs from it."""
    release = tool_version("etcd").removeprefix("v")
    tagged = f"gcr.io/etcd-development/etcd:v{release}"
    source = controller.settings["ETCD_IMAGE"]
    done = controller.ctr("images", "tag", "--force", source, tagged)
    assert done.returncode == 0, done.stderr
    # kubeadm's etcd manifest, as far as the tool reads it (its image line).
    manifest = controller.host_path("/var/lib/etcd-manifest/etcd.yaml")
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - etcd\n"
        f"    image: registry.k8s.io/etcd:{release}-0\n    name: etcd\n"
    )
    done = controller.inside(
        ["env", "ETCD_IMAGE=gcr.io/etcd-development/etcd:v0.0.0-not-imported",
         "ETCD_MANIFEST=/var/lib/etcd-manifest/etcd.yaml",
         f"STATE_DIR={controller.settings['STATE_DIR']}",
         str(controller.scripts / "etcd-tool"), "etcdctl", "version"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"etcdctl version: {release}" in done.stdout
