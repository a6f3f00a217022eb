"""Stand-ins for what the node-side upgrade script (ignition/files/upgrade/stubernetes-upgrade)
calls, in a world of files, so that it runs here unchanged and can be killed at any call.

Each is a stand-in, used because nothing real can run here (no API server the kubelet's
credentials reach, no systemd, no kubeadm with a cluster to upgrade). What each models:
- kubectl: `get configmap NAME -o jsonpath=...` and `patch configmap NAME --type merge -p BODY`
  on one ConfigMap's `data` (a JSON merge patch replaces the keys it names, RFC 7386; kubectl's
  JSONPath prints a missing key as nothing, k8s.io/cli-runtime jsonpath_flags.go);
- kubelet: `--version` prints "Kubernetes v<version>" (k8s.io/component-base version/verflag);
- kubeadm: `upgrade apply v<version> --yes` / `upgrade node` (cmd/kubeadm/app/cmd/upgrade),
  logged; it fails on demand;
- curl: `-o FILE URL` writes what the world serves at the URL's last path element, or fails
  (exit 22, as --fail does for an HTTP error) when nothing is served;
- systemctl: `daemon-reload`, `restart kubelet.service`, logged with the kubelet version then
  in place.
Every call counts itself; at the call numbered KILL_AT it kills the script's whole process
group (SIGKILL, as a power cut or `systemctl kill` would stop it), before its effect
(KILL_WHEN=before) or after it (after).
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

PRELUDE = r"""#!/usr/bin/env python3
import json, os, signal, sys
from pathlib import Path
WORLD = Path(os.environ["WORLD"])
VERSION = "@VERSION@"
NAME = "@NAME@"
args = sys.argv[1:]
counter = WORLD / "calls"
number = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(number))
with open(WORLD / "calls.log", "a") as log:
    log.write(f"{number} {NAME} {' '.join(args)}\n")
kill_at = int(os.environ.get("KILL_AT", "0"))
def kill():
    os.killpg(os.getpgid(0), signal.SIGKILL)
if number == kill_at and os.environ.get("KILL_WHEN") == "before":
    kill()
def done(status=0):
    if number == kill_at:
        kill()
    sys.exit(status)
"""

BODIES = {
    "kubectl": r"""
store = WORLD / "configmap.json"
data = json.loads(store.read_text()) if store.exists() else None
verb = next(a for a in args if a in ("get", "patch"))
if data is None:
    print('Error from server (NotFound): configmaps "x" not found', file=sys.stderr)
    done(1)
if verb == "get":
    template = next(a for a in args if a.startswith("jsonpath="))[len("jsonpath="):]
    out = template.replace('{"|"}', "|")
    import re
    out = re.sub(r"\{\.data\.([a-z_]+)\}", lambda m: data.get(m.group(1), ""), out)
    sys.stdout.write(out)
else:
    body = json.loads(args[args.index("-p") + 1])
    data.update(body["data"])
    store.write_text(json.dumps(data))
done()
""",
    "kubelet": r"""
if args == ["--version"]:
    print(f"Kubernetes v{VERSION}")
done()
""",
    "kubeadm": r"""
if (WORLD / "kubeadm.fail").exists():
    print("error: [upgrade/apply] FATAL: the stand-in was told to fail", file=sys.stderr)
    done(1)
with open(WORLD / "kubeadm.log", "a") as log:
    log.write(f"{VERSION} {' '.join(args)}\n")
done()
""",
    "curl": r"""
out = Path(args[args.index("-o") + 1])
served = WORLD / "served" / args[-1].rsplit("/", 1)[1]
if not served.exists():
    print("curl: (22) The requested URL returned error: 404", file=sys.stderr)
    done(22)
out.write_bytes(served.read_bytes())
done()
""",
    "systemctl": r"""
kubelet = Path(os.environ["STUBERNETES_BIN_DIR"]) / "kubelet"
import subprocess
running = subprocess.run([str(kubelet), "--version"], capture_output=True, text=True).stdout
with open(WORLD / "systemctl.log", "a") as log:
    log.write(f"{' '.join(args)} {running.strip() if 'restart' in args else ''}".strip() + "\n")
done()
""",
}

OLD, NEW = "1.35.8", "1.36.4"
SCRIPT = Path(__file__).resolve().parents[2] / "ignition/files/upgrade/stubernetes-upgrade"


def standin(name: str, version: str = "") -> bytes:
    text = PRELUDE.replace("@VERSION@", version).replace("@NAME@", name) + BODIES[name]
    return text.encode()


@dataclass
class UpgradeWorld:
    """One machine: its binaries, its state directory, the cluster's ConfigMap for it, and what
    is served for download."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def world(self) -> Path:
        return self.root / "world"

    @classmethod
    def make(cls, root: Path, running: str = OLD, served: str = NEW) -> UpgradeWorld:
        world = cls(root)
        for path in (world.bin, world.state, world.world / "served", root / "path"):
            path.mkdir(parents=True)
        for name in ("kubectl", "kubelet", "kubeadm"):
            world.install(world.bin / name, standin(name, running))
            world.install(world.world / "served" / name, standin(name, served))
        for name in ("curl", "systemctl"):
            world.install(root / "path" / name, standin(name))
        (world.world / "configmap.json").write_text("{}")
        return world

    @staticmethod
    def install(path: Path, contents: bytes) -> None:
        path.write_bytes(contents)
        path.chmod(0o755)

    def ask(self, release: str = NEW, attempt: str = "a1", how: str = "apply") -> None:
        """What the upgrade step writes (components/scripts/upgrade-machine)."""
        binaries = ";".join(
            f"{name} https://dl.k8s.io/release/v{release}/bin/linux/amd64/{name} "
            f"{hashlib.sha256((self.world / 'served' / name).read_bytes()).hexdigest()}"
            for name in ("kubeadm", "kubectl", "kubelet")
        )
        data = self.configmap()
        data.update(
            release=release, attempt=attempt, kubeadm_upgrade=how, binaries=binaries, state="asked"
        )
        (self.world / "configmap.json").write_text(json.dumps(data))

    def configmap(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.world / "configmap.json").read_text())
        return data

    def run(self, kill_at: int = 0, kill_when: str = "after") -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.root / 'path'}:/usr/bin:/bin",
            "WORLD": str(self.world),
            "STUBERNETES_BIN_DIR": str(self.bin),
            "STUBERNETES_STATE_DIR": str(self.state),
            "STUBERNETES_KUBELET_KUBECONFIG": str(self.root / "kubelet.conf"),
            "STUBERNETES_NODE_NAME": "w1",
            # A worker's: none there unless a test makes it (a controller's).
            "STUBERNETES_KUBEADM_PATCHES": str(self.root / "kubeadm-patches"),
            "KILL_AT": str(kill_at),
            "KILL_WHEN": kill_when,
        }
        # Its own process group, which a stand-in kills whole.
        return subprocess.run(
            ["bash", str(SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
        )

    def lines(self, name: str) -> list[str]:
        path = self.world / name
        return path.read_text().splitlines() if path.exists() else []

    def calls(self) -> int:
        path = self.world / "calls"
        return int(path.read_text()) if path.exists() else 0

    def version(self, name: str = "kubelet") -> str:
        """The release of the stand-in installed as BIN_DIR/NAME (read, not run: a run counts)."""
        found = re.search(r'^VERSION = "(.*)"$', (self.bin / name).read_text(), re.MULTILINE)
        return found[1] if found else ""


KILLED = -signal.SIGKILL
