"""A stand-in for each lab machine's upgrade service, for the real engine's upgrade steps.

The real service is ignition/files/upgrade/stubernetes-upgrade (run by
stubernetes-upgrade.timer every 30 s on the machine; tests/lab/test_lab_node.py runs it for real
on a real node, with the real kubeadm and kubelet). The lab's machines have no kubelet of their
own (kwok keeps their Nodes), so here one thread of the lab plays every joined machine's
service, every POLL_SECONDS (the lab's pace, as its gates poll every second), and answers in
the machine's ConfigMap kube-system/stubernetes-upgrade-<machine> as the real one does:

* an ask (`release`, `attempt`, `kubeadm_upgrade`) is taken up once per `attempt`: the real
  service runs nothing again for an attempt it failed ("nothing runs again until the step asks
  again") and leaves one it finished at `done`;
* a release the Node's kubelet already runs: `done` at once (the real service's
  `running == release`); an older one: `failed`, "refusing R: this machine runs X, never
  downgraded";
* a newer one: the states the real service reports in order, `downloading`, `kubeadm upgrade
  <apply|node>`, `restarting the kubelet`, then the Node's status.nodeInfo.kubeletVersion set to
  v<release> through the status subresource, as the restarted kubelet posts it (kubernetes
  pkg/kubelet/nodestatus/setters.go VersionInfo), then `done`; its phases (fetched,
  kubeadm-installed, upgraded, installed, done) are said in the lab's log of the machine;
* with a fault set for the machine (`set_fault`, the lab's ``upgrade-fault`` request), its
  kubeadm upgrade fails: `failed`, with the real service's error, "kubeadm upgrade node failed:
  <line>" (or "kubeadm upgrade apply v<release> failed: <line>"), until the fault is cleared.

Where it differs from the real service, and why: it reads and writes with the lab's admin
kubeconfig, not the machine's kubelet credentials (tests/real/test_upgrade_channel_real.py
checks those on a real API server); it downloads nothing (the binaries' URLs and digests are
the pinned ones, checked offline); and it takes up no ask without an `attempt`, which the
upgrade step always sends (components/scripts/upgrade-machine) and a hand-made patch (the
engine test's unfinished-upgrade check) does not: the real service would answer that one
`failed` ("unknown kubeadm_upgrade").
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable
from typing import Any

# The ConfigMaps' names and label (ignition/upgrade.py upgrade_configmap,
# components/upgrade_channel.py UPGRADE_LABEL).
CONFIGMAP_PREFIX = "stubernetes-upgrade-"
UPGRADE_LABEL = "stubernetes.dev/upgrade-of"
NAMESPACE = "kube-system"
POLL_SECONDS = 2.0
# A kubelet's version, v<major>.<minor>.<patch>[-pre] (setters.go VersionInfo).
KUBELET_VERSION = re.compile(r"^v(\d+\.\d+\.\d+)")
RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
# The Ignition's kubelet download (ignition/node_binaries.py node_downloads: upstream's
# dl.k8s.io/release/v<release>/bin/linux/amd64/kubelet, or the same path under Matchbox's
# /assets/ with cachedInstall).
KUBELET_DOWNLOAD = re.compile(r"/v(\d+\.\d+\.\d+[^/]*)/bin/linux/amd64/kubelet$")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def ignition_kubelet_release(downloads: dict[str, str]) -> str | None:
    """The release of the kubelet an Ignition installs, from its downloads (path -> source)."""
    for path, source in downloads.items():
        if path.endswith("/kubelet"):
            found = KUBELET_DOWNLOAD.search(source)
            if found:
                return found.group(1)
    return None


def _key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def kubeadm_failure(how: str, release: str, line: str) -> str:
    """The real service's error for a failed kubeadm upgrade (stubernetes-upgrade `fail`)."""
    if how == "apply":
        return f"kubeadm upgrade apply v{release} failed: {line}"
    return f"kubeadm upgrade node failed: {line}"


class UpgradeServices:
    """Every joined machine's upgrade service, in one polling thread of the lab."""

    def __init__(
        self,
        kubectl: Kubectl,
        joined: Callable[[], list[str]],
        record: Callable[[dict[str, Any]], None],
        log: Callable[[str], Callable[[str], None]],
        stopping: threading.Event,
    ) -> None:
        self.kubectl = kubectl
        self.joined = joined
        self.record = record
        self.log = log
        self.stopping = stopping
        self.lock = threading.Lock()
        # The attempt each machine last took up (its state file's `attempt`).
        self.taken: dict[str, str] = {}
        # The machines whose kubeadm upgrade fails, with the line kubeadm ends with.
        self.faults: dict[str, str] = {}
        self.thread = threading.Thread(target=self._run, name="upgrade-services", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def set_fault(self, machine: str, line: str | None) -> dict[str, str]:
        """The machine's kubeadm upgrade fails with ``line`` until cleared (``line`` None)."""
        with self.lock:
            if line is None:
                self.faults.pop(machine, None)
            else:
                self.faults[machine] = line
            return dict(self.faults)

    def _run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception as error:  # the next poll tries again, as the timer does
                self.log("upgrade-services")(f"poll failed: {error}")

    def _json(self, *args: str) -> dict[str, Any]:
        done = self.kubectl(*args, "-o", "json", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        loaded: dict[str, Any] = json.loads(done.stdout)
        return loaded

    def poll(self) -> None:
        """One look at every joined machine's ConfigMap, and an answer where one is due."""
        machines = set(self.joined())
        if not machines:
            return
        asks = self._json("get", "configmaps", "-n", NAMESPACE, "-l", UPGRADE_LABEL)
        nodes = self._json("get", "nodes")
        versions = {
            n["metadata"]["name"]: str(n["status"].get("nodeInfo", {}).get("kubeletVersion", ""))
            for n in nodes["items"]
        }
        for item in asks["items"]:
            name = str(item["metadata"]["name"])
            machine = name.removeprefix(CONFIGMAP_PREFIX)
            if machine not in machines or machine not in versions:
                continue
            self.answer(machine, item.get("data") or {}, versions[machine])

    def _report(self, machine: str, release: str, attempt: str, state: str, **more: str) -> None:
        data = {"state": state, "error": "", **more}
        self.kubectl(
            "patch", "configmap", f"{CONFIGMAP_PREFIX}{machine}", "-n", NAMESPACE,
            "--type=merge", "-p", json.dumps({"data": data}),
        )  # fmt: skip
        self.record(
            {
                "event": "upgrade",
                "machine": machine,
                "release": release,
                "attempt": attempt,
                "state": state,
                **({"error": more["error"]} if more.get("error") else {}),
            }
        )

    def answer(self, machine: str, data: dict[str, str], kubelet: str) -> None:
        release, attempt = data.get("release") or "", data.get("attempt") or ""
        how = data.get("kubeadm_upgrade") or ""
        running = KUBELET_VERSION.match(kubelet)
        if not RELEASE.match(release) or not attempt or running is None:
            return
        with self.lock:
            if self.taken.get(machine) == attempt:
                return
            self.taken[machine] = attempt
            fault = self.faults.get(machine)
        try:
            self._upgrade(machine, release, attempt, how, running.group(1), fault)
        except Exception:
            # Not reported: the next poll takes the ask up again (the real service's next run
            # goes on from its last phase).
            with self.lock:
                self.taken.pop(machine, None)
            raise

    def _upgrade(
        self, machine: str, release: str, attempt: str, how: str, now: str, fault: str | None
    ) -> None:
        say = self.log(machine)
        version = {"version": now}
        if release == now:
            say(f"upgrade service: {release} runs already: done")
            self._report(machine, release, attempt, "done", **version)
            return
        if _key(release) < _key(now):
            error = f"refusing {release}: this machine runs {now}, never downgraded"
            say(f"upgrade service: {error}")
            self._report(machine, release, attempt, "failed", error=error, **version)
            return
        say(f"upgrade service: {release} asked (attempt {attempt}): downloading")
        self._report(machine, release, attempt, "downloading", **version)
        say(f"upgrade service: {release}: fetched, kubeadm-installed")
        self._report(machine, release, attempt, f"kubeadm upgrade {how}", **version)
        if fault is not None:
            error = kubeadm_failure(how, release, fault)
            say(f"upgrade service: {error}")
            self._report(machine, release, attempt, "failed", error=error, **version)
            return
        say(f"upgrade service: {release}: upgraded, installed; restarting the kubelet")
        self._report(machine, release, attempt, "restarting the kubelet", version=release)
        patch = {"status": {"nodeInfo": {"kubeletVersion": f"v{release}"}}}
        self.kubectl(
            "patch", "node", machine, "--subresource=status", "--type=merge",
            "-p", json.dumps(patch),
        )  # fmt: skip
        self._report(machine, release, attempt, "done", version=release)
        say(f"upgrade service: upgraded to {release}")
