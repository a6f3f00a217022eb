"""The real containerd (v2.2.9, built by scripts/tools) with a node's /etc/containerd/config.toml.

`containerd --config FILE config dump` loads a file as the daemon does and prints the result,
migrated to the newest schema (containerd v2.2.9 `cmd/containerd/command/config.go` dumpConfig:
`srvconfig.LoadConfig`, then every plugin's ConfigMigration when the file's version is older,
then each plugin's section decoded into its config type by `Config.Decode`, which warns
"Ignoring unknown key in TOML for plugin" about any key the type lacks;
`cmd/containerd/server/config/config.go` loadConfigFile warns "Ignoring unknown key in TOML"
for the top level).

The daemon itself runs on this host for a machine's scratch root: every absolute path the node's
file names (root, state, the gRPC socket) is taken under that root, and so are the defaults it
leaves to containerd that would be created or served outside them (`DAEMON_PATH_DEFAULTS`), so
a kubeadm chrooted into the root finds the socket at the node's own path. It runs in a mount
namespace of its own (util-linux `unshare --mount`) with a fresh tmpfs on /run: containerd
always creates its default state directory /run/containerd, for the shims' sockets, whatever
`state` says (`cmd/containerd/server/server.go` CreateTopLevelDirectories), and the mounts its
snapshotter makes stay in that namespace too. Nothing is created on the host.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from real_process import RealProcess, start
from tool_cache import require_tool

NODE_CONFIG = "/etc/containerd/config.toml"
CRI = 'plugins."io.containerd.grpc.v1.cri"'
# Paths outside root and state that the daemon creates or serves, by the schema-2 table the
# node's file would set them in, with containerd v2.2.9's defaults (`containerd config
# default`): the CNI config folder the CRI plugin creates and watches
# (`internal/cri/server/cni_conf_syncer.go`) and the plugins' folder beside it; the `opt`
# plugin's folder (`plugins/services/opt/service.go`); NRI's socket and folders
# (`internal/nri/config.go`).
DAEMON_PATH_DEFAULTS = {
    f"{CRI}.cni": {"bin_dir": "/opt/cni/bin", "conf_dir": "/etc/cni/net.d"},
    'plugins."io.containerd.internal.v1.opt"': {"path": "/opt/containerd"},
    'plugins."io.containerd.nri.v1.nri"': {
        "socket_path": "/var/run/nri/nri.sock",
        "plugin_path": "/opt/nri/plugins",
        "plugin_config_path": "/etc/nri/conf.d",
    },
}
# A string value that is an absolute path, as the node's file writes it (basic strings).
_PATH_VALUE = re.compile(r'^(\s*[A-Za-z_]+\s*=\s*)"(/[^"]*)"\s*$', re.MULTILINE)


def containerd_binary() -> Path:
    return require_tool("containerd", "containerd")


def ctr_binary() -> Path:
    return require_tool("containerd", "ctr")


@dataclass(frozen=True)
class Dump:
    returncode: int
    stdout: str
    stderr: str

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.stdout)

    def warnings(self) -> list[str]:
        """Every line containerd logged at warning level or above."""
        levels = ("level=warning", "level=error", "level=fatal")
        return [line for line in self.stderr.splitlines() if any(x in line for x in levels)]

    def report(self) -> str:
        return f"exited {self.returncode}\n--- stderr ---\n{self.stderr}"


def config_dump(config: Path) -> Dump:
    """`containerd --config <config> config dump`. The file must exist: dumpConfig takes a
    missing one for the defaults."""
    if not config.is_file():
        raise FileNotFoundError(config)
    done = subprocess.run(
        [str(containerd_binary()), "--config", str(config), "config", "dump"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Dump(done.returncode, done.stdout, done.stderr)


def _table(config: dict[str, Any], header: str) -> dict[str, Any] | None:
    """The table a header such as `plugins."io.containerd.grpc.v1.cri".cni` names, if set."""
    keys = [part.strip('"') for part in re.findall(r'"[^"]*"|[^."]+', header)]
    table: Any = config
    for key in keys:
        if not isinstance(table, dict) or key not in table:
            return None
        table = table[key]
    return table if isinstance(table, dict) else None


def rerooted(node_config: str, root: Path) -> str:
    """The node's file with each absolute path it names under `root`, and each default of
    DAEMON_PATH_DEFAULTS it leaves unset set under `root` too: in its table when the file has
    that table (right below the header), else in the table appended at the end (TOML forbids
    defining a table twice)."""
    base = str(root.resolve())
    text = _PATH_VALUE.sub(lambda m: f'{m.group(1)}"{base}{m.group(2)}"', node_config)
    parsed = tomllib.loads(node_config)
    for header, defaults in DAEMON_PATH_DEFAULTS.items():
        table = _table(parsed, header)
        unset = {key: value for key, value in defaults.items() if key not in (table or {})}
        lines = "".join(f'{key} = "{base}{value}"\n' for key, value in unset.items())
        if table is None:
            text += f"\n[{header}]\n{lines}"
        elif lines:
            text = text.replace(f"[{header}]\n", f"[{header}]\n{lines}", 1)
    return text


def socket_path(root: Path) -> Path:
    """The node's gRPC socket, under `root`."""
    address = tomllib.loads((root / NODE_CONFIG.lstrip("/")).read_text())["grpc"]["address"]
    return root / str(address).lstrip("/")


@dataclass
class Containerd:
    process: RealProcess
    config: Path
    socket: Path

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ctr_binary()), "--address", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def stop(self) -> None:
        self.process.stop()


def start_containerd(
    root: Path, work: Path, wrap: Callable[[Sequence[str]], list[str]] | None = None
) -> Containerd:
    """containerd as root, with the scratch root's /etc/containerd/config.toml re-rooted into
    `root` (the copy is written to `work`), run through `wrap` when given (e.g. into a network
    namespace); ready once `ctr version` answers on its socket."""
    node_config = (root / NODE_CONFIG.lstrip("/")).read_text()
    config = work / "containerd-daemon.toml"
    work.mkdir(parents=True, exist_ok=True)
    config.write_text(rerooted(node_config, root))
    socket = socket_path(root)
    # A unix socket's path fits in sockaddr_un.sun_path (108 bytes, with the NUL), and the
    # ttrpc socket beside it is the gRPC one + ".ttrpc" (cmd/containerd/command/main.go).
    if len(f"{socket}.ttrpc") >= 108:
        raise ValueError(f"{socket} is too long for a unix socket: use a shorter scratch root")

    def ready() -> bool:
        if not socket.exists():
            return False
        done = subprocess.run(
            [str(ctr_binary()), "--address", str(socket), "version"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0

    daemon = [str(containerd_binary()), "--config", str(config), "--log-level", "info"]
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
    argv += ['mount -t tmpfs tmpfs /run && exec "$@"', "containerd", *daemon]
    if wrap is not None:
        argv = wrap(argv)
    process = start("containerd", argv, work, ready, timeout_seconds=60)
    return Containerd(process, config, socket)
