"""A STAND-IN for the kubelet's static Pods (not a kubelet): what `kubeadm upgrade apply` needs.

kubeadm upgrades a control plane by rewriting the static Pod manifests in
/etc/kubernetes/manifests and reading back, through the API, the mirror Pod that the kubelet
posts for each (kubernetes `cmd/kubeadm/app/phases/upgrade/staticpods.go` upgradeComponent:
`WaitForStaticPodHashChange` waits for the mirror Pod `<component>-<node>` to carry another
`kubernetes.io/config.hash`, then `WaitForPodsWithLabel("component=<component>")` for every
such Pod in kube-system to be in phase Running; `cmd/kubeadm/app/util/apiclient/wait.go`). It
reads the Node too (`cmd/kubeadm/app/util/config/cluster.go` GetNodeRegistration, from the
node name in kubelet.conf's certificate) and wants every control-plane Node Ready
(`cmd/kubeadm/app/phases/upgrade/health.go` controlPlaneNodesReady). This process models, for
kubeadm's files only, the part of the kubelet these depend on; it runs as the node's kubelet
user (kubelet.conf's certificate, system:node:<node>), so the API server's Node authorizer and
NodeRestriction admission judge its requests as the kubelet's:

- the file source: every regular, non-hidden file in the manifests directory is a pod
  (`pkg/kubelet/config/file.go` extractFromDir, glob "[^.]*"); a file created, written,
  removed or renamed is an event (`pkg/kubelet/config/file_linux.go` produceWatchEvent). The
  kubelet hears them through inotify; this polls every POLL_SECONDS, and a file whose inode,
  mtime or size changed counts as removed and added again (kubeadm replaces a manifest by a
  rename, `os.Rename`: a new inode, even when the contents are equal, as when it restarts etcd
  with renewed certificates and an unchanged manifest).
- the static pod's hash: `pkg/kubelet/config/common.go` applyDefaults takes FNV-128a of the
  pod, then "host:<node>" and "file:<path>", as the pod's UID and its annotation
  kubernetes.io/config.hash. The kubelet hashes the decoded Go object (`hash.DeepHashObject`,
  a spew dump), which only Go reproduces: this hashes the manifest's canonical JSON instead.
  kubeadm only compares the value with the one before, so a manifest changed gives another
  hash here as it does there.
- running it: a removed or changed pod's process is stopped (SIGTERM, then SIGKILL after its
  terminationGracePeriodSeconds) while everything else goes on, and the new one starts once the
  old has ended (`pkg/kubelet/pod_workers.go` holds a static pod until its predecessor of the
  same full name has terminated); a process that exits is started again
  after the kubelet's crash back-off, 10 s doubling to 300 s (restartPolicy Always;
  `pkg/kubelet/kubelet.go` backOffPeriod, MaxCrashLoopBackOff). A container is a local process
  (control_plane.static_pods: its command, the mounted paths moved under the scratch root).
  The binary is the one of the image's release: kube-* images tagged vX.Y.Z run the binaries
  built for that release (scripts/tools: "kubernetes-previous" is v1.35.8, "kubernetes"
  v1.36.3); etcd runs the tool "etcd" (v3.6.16) whatever its tag, 3.6.6-0 or 3.6.8-0: one etcd
  3.6 binary reads the data of every 3.6 patch.
- the mirror Pod: `pkg/kubelet/pod/mirror_client.go` CreateMirrorPod, a copy of the static pod
  named <pod>-<node> (`pkg/kubelet/config/common.go` generatePodName) bound to the node, with
  the annotations kubernetes.io/config.hash, config.mirror (the hash), config.source=file and
  config.seen (`pkg/kubelet/types/pod_update.go`), the NoExecute toleration applyDefaults adds
  to file pods, and the Node as its controller owner; an outdated one (another config.mirror)
  is deleted with grace period 0 and its UID as precondition (DeleteMirrorPod) and created again.
- status: phase Running while the process runs (`pkg/kubelet/kubelet_pods.go` getPhase), Ready
  and ContainersReady once the container's probe passes: its readinessProbe, else its
  startupProbe, else its livenessProbe, as an HTTP GET (`pkg/probe/http/http.go`: 200 to 399
  is success, HTTPS is not verified; a named port is the container's, `pkg/probe/util.go`).
- the Node: registered with the labels the kubelet sets (`pkg/kubelet/kubelet_node_status.go`
  initialNode: kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch and their beta
  twins), status Ready with the version of the kubelet it stands for (the founding release's,
  what the machine runs before its upgrade), and its Lease in kube-node-lease
  renewed every 10 s (`pkg/kubelet/kubelet.go`: a quarter, nodeLeaseRenewIntervalFraction, of
  NodeLeaseDurationSeconds, 40 s by default), which the node lifecycle controller takes as the
  heartbeat.

It runs no other pod (no CRI, no containers, no pod network) and no probe after Ready. Every
start, stop and mirror Pod it makes is a line of its events file, which tests read.

Run as `python -m control_plane.kubelet_standin CONFIG.json` inside the control plane's network
namespace (control_plane.cluster starts it); SIGTERM stops every process it started, then it.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from control_plane.static_pods import Translation, static_pod

POLL_SECONDS = 0.25
# The kubelet's crash back-off (pkg/kubelet/kubelet.go backOffPeriod, MaxCrashLoopBackOff).
BACKOFF_FIRST_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 300.0
# The node lease lasts 40 s and is renewed every 10 s (pkg/kubelet/kubelet.go).
LEASE_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
NODE_STATUS_SECONDS = 60.0
PROBE_EVERY_SECONDS = 1.0
# The kubelet's default for a pod that sets none (API default terminationGracePeriodSeconds).
DEFAULT_GRACE_SECONDS = 30
FNV128_OFFSET = 0x6C62272E07BB014262B821756295C58D
FNV128_PRIME = 0x0000000001000000000000000000013B
HASH_ANNOTATION = "kubernetes.io/config.hash"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SOURCE_ANNOTATION = "kubernetes.io/config.source"
SEEN_ANNOTATION = "kubernetes.io/config.seen"


def fnv128a(data: bytes) -> str:
    value = FNV128_OFFSET
    for byte in data:
        value ^= byte
        value = (value * FNV128_PRIME) % (1 << 128)
    return f"{value:032x}"


def pod_hash(manifest: dict[str, Any], node: str, source: str) -> str:
    """applyDefaults' UID: FNV-128a of the pod, then the node and the file (see the module)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return fnv128a(canonical + f"host:{node}".encode() + f"file:{source}".encode())


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """metav1.MicroTime, as a Lease's renewTime is written."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StandInConfig:
    root: Path
    manifests: Path
    node: str
    node_address: str
    kubeconfig: Path
    logs: Path
    events: Path
    # image tag (v1.36.3) -> component -> binary; "etcd" is the etcd binary for every tag.
    binaries: dict[str, dict[str, str]]
    etcd_binary: str
    kubelet_version: str

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()})

    @classmethod
    def from_json(cls, text: str) -> StandInConfig:
        raw = json.loads(text)
        return cls(
            root=Path(raw["root"]),
            manifests=Path(raw["manifests"]),
            node=raw["node"],
            node_address=raw["node_address"],
            kubeconfig=Path(raw["kubeconfig"]),
            logs=Path(raw["logs"]),
            events=Path(raw["events"]),
            binaries=raw["binaries"],
            etcd_binary=raw["etcd_binary"],
            kubelet_version=raw["kubelet_version"],
        )


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class Api:
    """The API server as the kubelet reaches it: kubelet.conf's server, CA and client cert."""

    def __init__(self, kubeconfig: Path, private: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        (cluster,) = config["clusters"]
        (user,) = config["users"]
        host_port = cluster["cluster"]["server"].removeprefix("https://")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        ca = private / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["cluster"]["certificate-authority-data"]))
        cert, key = private / "client.crt", private / "client.key"
        cert.write_bytes(base64.b64decode(user["user"]["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["user"]["client-key-data"]))
        key.chmod(0o600)
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=10
        )
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        if response.status >= 300:
            raise ApiError(response.status, text)
        return json.loads(text) if text else None


@dataclass
class RunningPod:
    """One static pod: its file, what it was read as, and its process."""

    path: Path
    identity: tuple[int, int, int]
    manifest: dict[str, Any]
    hash: str
    seen: str
    binary: str | None
    argv: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    restarts: int = 0
    backoff: float = BACKOFF_FIRST_SECONDS
    next_start: float = 0.0
    ready: bool = False
    next_probe: float = 0.0
    mirror_uid: str = ""
    status_sent: str = ""

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.manifest["spec"]["containers"]
        return dict(container)

    @property
    def image(self) -> str:
        return str(self.container["image"])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Terminating:
    """A pod's process sent SIGTERM, until it ends."""

    pod: RunningPod
    process: subprocess.Popen[bytes]
    why: str
    begun: float
    kill_at: float


class StandIn:
    def __init__(self, config: StandInConfig) -> None:
        self.config = config
        self.translation = Translation(config.root)
        self.pods: dict[Path, RunningPod] = {}
        self.terminating: list[Terminating] = []
        # kubelet.conf's CA, certificate and key as files, for ssl; removed when it stops.
        self.private = Path(tempfile.mkdtemp(prefix="kubelet-standin-"))
        self.api = Api(config.kubeconfig, self.private)
        self.node_uid = ""
        self.next_lease = 0.0
        self.next_node_status = 0.0
        self.lease_exists = False
        self.registered_at = now_rfc3339()
        self.stopping = False

    # ------------------------------------------------------------------ events and logs

    def event(self, pod: str, what: str, **details: Any) -> None:
        line = {"time": time.time(), "pod": pod, "event": what, **details}
        with self.config.events.open("a") as out:
            out.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)

    # ------------------------------------------------------------------ the file source

    def binary_for(self, manifest: dict[str, Any]) -> str | None:
        (container,) = manifest["spec"]["containers"]
        name, tag = container["name"], container["image"].rpartition(":")[2]
        if name == "etcd":
            return self.config.etcd_binary
        return self.config.binaries.get(tag, {}).get(name)

    def scan(self) -> None:
        seen: set[Path] = set()
        for path in sorted(self.config.manifests.glob("[!.]*")):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if not path.is_file():
                continue
            seen.add(path)
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            old = self.pods.get(path)
            if old is not None and old.identity == identity:
                continue
            try:
                manifest = yaml.safe_load(path.read_text())
                manifest["spec"]["containers"][0]["command"]
            except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as problem:
                # Read again at the next poll, as the kubelet reads a file at its next event.
                print(f"could not read {path}: {problem}", flush=True)
                continue
            if old is not None:
                self.stop_pod(old, "manifest changed")
            self.add_pod(path, identity, manifest)
        for path in [p for p in self.pods if p not in seen]:
            gone = self.pods.pop(path)
            self.stop_pod(gone, "manifest removed")
            self.delete_mirror(gone)

    def add_pod(self, path: Path, identity: tuple[int, int, int], manifest: dict[str, Any]) -> None:
        digest = pod_hash(manifest, self.config.node, str(path))
        binary = self.binary_for(manifest)
        pod = RunningPod(path, identity, manifest, digest, now_rfc3339(), binary)
        name = pod.name
        if binary is not None:
            pod.argv = self.translation.argv(static_pod(name, manifest), Path(binary))
        self.pods[path] = pod
        self.event(name, "read", hash=digest, image=pod.image, binary=binary)

    # ------------------------------------------------------------------ processes

    def start_pod(self, pod: RunningPod) -> None:
        if pod.binary is None:
            if pod.next_start == 0.0:
                self.event(pod.name, "no-binary", image=pod.image)
            pod.next_start = float("inf")
            return
        log = self.config.logs / f"{pod.name}.log"
        with log.open("ab") as out:
            out.write(
                f"=== kubelet stand-in: {pod.image} ({pod.binary}) at {now_rfc3339()}\n".encode()
            )
            out.flush()
            pod.process = subprocess.Popen(
                pod.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        pod.started_at = now_rfc3339()
        pod.ready = False
        pod.next_probe = 0.0
        self.event(pod.name, "started", hash=pod.hash, image=pod.image, pid=pod.process.pid)

    def stop_pod(self, pod: RunningPod, why: str) -> None:
        """SIGTERM now, SIGKILL after the pod's terminationGracePeriodSeconds; the loop goes on
        meanwhile (the kubelet stops each pod in a worker of its own), and a pod of the same
        name starts once this one has ended (the kubelet's pod workers hold a static pod's
        successor until its predecessor has terminated)."""
        process = pod.process
        pod.process = None
        if process is None or process.poll() is not None:
            return
        grace = int(
            pod.manifest["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        )
        process.send_signal(signal.SIGTERM)
        now = time.monotonic()
        self.terminating.append(Terminating(pod, process, why, now, now + grace))

    def reap(self) -> None:
        for ending in list(self.terminating):
            if ending.process.poll() is None:
                if time.monotonic() < ending.kill_at:
                    continue
                ending.process.kill()
                ending.process.wait()
            self.terminating.remove(ending)
            pod = ending.pod
            self.event(
                pod.name, "stopped", why=ending.why, hash=pod.hash, image=pod.image,
                seconds=round(time.monotonic() - ending.begun, 3), exit=ending.process.returncode,
            )  # fmt: skip

    def keep_running(self) -> None:
        self.reap()
        ending = {t.pod.name for t in self.terminating}
        for pod in self.pods.values():
            if pod.alive():
                continue
            if pod.process is not None:
                code = pod.process.returncode
                pod.process = None
                pod.ready = False
                pod.restarts += 1
                pod.next_start = time.monotonic() + pod.backoff
                self.event(pod.name, "exited", exit=code, restart_in=pod.backoff)
                pod.backoff = min(pod.backoff * 2, BACKOFF_MAX_SECONDS)
                continue
            if pod.name not in ending and time.monotonic() >= pod.next_start:
                self.start_pod(pod)

    # ------------------------------------------------------------------ probes

    def probe(self, pod: RunningPod) -> bool:
        container = pod.container
        spec = next(
            (
                container[k]
                for k in ("readinessProbe", "startupProbe", "livenessProbe")
                if k in container
            ),
            None,
        )
        if spec is None or "httpGet" not in spec:
            return True
        get = spec["httpGet"]
        host = get.get("host") or self.config.node_address
        port = get["port"]
        if isinstance(port, str) and not port.isdigit():
            # A named port: the container's port of that name (pkg/probe/util.go findPortByName).
            port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
        port = int(port)
        path = get.get("path", "/")
        try:
            if get.get("scheme", "HTTP").upper() == "HTTPS":
                context = ssl._create_unverified_context()
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, context=context, timeout=2
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
        except (OSError, http.client.HTTPException):
            return False
        return 200 <= status < 400

    def probe_all(self) -> None:
        for pod in self.pods.values():
            if not pod.alive() or pod.ready or time.monotonic() < pod.next_probe:
                continue
            pod.next_probe = time.monotonic() + PROBE_EVERY_SECONDS
            if self.probe(pod):
                pod.ready = True
                self.event(pod.name, "ready", hash=pod.hash, image=pod.image)

    # ------------------------------------------------------------------ the API

    def register_node(self) -> None:
        if self.node_uid:
            return
        node = self.config.node
        labels = {
            "kubernetes.io/hostname": node,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
        }
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}}
        try:
            created = self.api.request("POST", "/api/v1/nodes", body)
        except ApiError as error:
            if error.status != 409:
                raise
            created = self.api.request("GET", f"/api/v1/nodes/{node}")
        self.node_uid = created["metadata"]["uid"]
        self.event(node, "node-registered", uid=self.node_uid)

    def node_status(self) -> None:
        if time.monotonic() < self.next_node_status:
            return
        now = now_rfc3339()
        status = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "the kubelet stand-in of the tests (static pods only)",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": self.registered_at,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.config.node_address},
                {"type": "Hostname", "address": self.config.node},
            ],
            "nodeInfo": {
                "kubeletVersion": self.config.kubelet_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "osImage": "",
                "containerRuntimeVersion": "",
                "kubeProxyVersion": "",
            },
        }
        self.api.request(
            "PATCH",
            f"/api/v1/nodes/{self.config.node}/status",
            {"status": status},
            "application/merge-patch+json",
        )
        self.next_node_status = time.monotonic() + NODE_STATUS_SECONDS

    def renew_lease(self) -> None:
        if time.monotonic() < self.next_lease:
            return
        node = self.config.node
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_micro(),
        }
        if not self.lease_exists:
            owner = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": self.node_uid}
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node, "ownerReferences": [owner]},
                "spec": spec,
            }
            try:
                self.api.request("POST", path, lease)
            except ApiError as error:
                if error.status != 409:
                    raise
            self.lease_exists = True
        self.api.request("PATCH", f"{path}/{node}", {"spec": spec}, "application/merge-patch+json")
        self.next_lease = time.monotonic() + LEASE_RENEW_SECONDS

    def mirror_name(self, pod: RunningPod) -> str:
        return f"{pod.name}-{self.config.node}"

    def mirror_body(self, pod: RunningPod) -> dict[str, Any]:
        body = json.loads(json.dumps(pod.manifest))
        body.pop("status", None)
        metadata = body["metadata"]
        metadata["name"] = self.mirror_name(pod)
        metadata["namespace"] = metadata.get("namespace") or "default"
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            HASH_ANNOTATION: pod.hash,
            MIRROR_ANNOTATION: pod.hash,
            SOURCE_ANNOTATION: "file",
            SEEN_ANNOTATION: pod.seen,
        }
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "name": self.config.node,
                "uid": self.node_uid,
                "controller": True,
            }
        ]
        spec = body["spec"]
        spec["nodeName"] = self.config.node
        spec["tolerations"] = [
            *(spec.get("tolerations") or []),
            {"operator": "Exists", "effect": "NoExecute"},
        ]
        return dict(body)

    def pods_path(self, pod: RunningPod) -> str:
        namespace = pod.manifest["metadata"].get("namespace") or "default"
        return f"/api/v1/namespaces/{namespace}/pods"

    def ensure_mirror(self, pod: RunningPod) -> None:
        if pod.mirror_uid:
            return
        path, name = self.pods_path(pod), self.mirror_name(pod)
        try:
            created = self.api.request("POST", path, self.mirror_body(pod))
        except ApiError as error:
            if error.status != 409:
                raise
            existing = self.api.request("GET", f"{path}/{name}")
            if existing["metadata"].get("annotations", {}).get(MIRROR_ANNOTATION) == pod.hash:
                pod.mirror_uid = existing["metadata"]["uid"]
                pod.status_sent = ""
                return
            options = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": existing["metadata"]["uid"]},
            }
            self.api.request("DELETE", f"{path}/{name}", options)
            self.event(
                pod.name,
                "mirror-deleted",
                hash=existing["metadata"]["annotations"].get(HASH_ANNOTATION),
            )
            created = self.api.request("POST", path, self.mirror_body(pod))
        pod.mirror_uid = created["metadata"]["uid"]
        pod.status_sent = ""
        self.event(pod.name, "mirror-created", hash=pod.hash, uid=pod.mirror_uid)

    def delete_mirror(self, pod: RunningPod) -> None:
        """A removed file's mirror Pod goes too (the kubelet deletes orphaned mirror pods)."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
        try:
            self.api.request("DELETE", f"{self.pods_path(pod)}/{self.mirror_name(pod)}", options)
            self.event(pod.name, "mirror-deleted", hash=pod.hash)
        except (ApiError, OSError, http.client.HTTPException):
            pass  # already gone, or the API server is down: the next sync settles it

    def pod_status(self, pod: RunningPod) -> dict[str, Any]:
        now = now_rfc3339()
        running = pod.alive()
        ready = "True" if running and pod.ready else "False"
        state: dict[str, Any]
        if running:
            state = {"running": {"startedAt": pod.started_at}}
        else:
            state = {
                "waiting": {"reason": "CrashLoopBackOff" if pod.restarts else "ContainerCreating"}
            }
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": ready},
            {"type": "ContainersReady", "status": ready},
            {"type": "PodScheduled", "status": "True"},
        ]
        for condition in conditions:
            condition["lastTransitionTime"] = now
        container = pod.container
        return {
            "phase": "Running" if running or pod.restarts else "Pending",
            "conditions": conditions,
            "hostIP": self.config.node_address,
            "hostIPs": [{"ip": self.config.node_address}],
            "podIP": self.config.node_address,
            "podIPs": [{"ip": self.config.node_address}],
            "startTime": pod.seen,
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": pod.image,
                    "imageID": "",
                    "containerID": f"standin://{pod.process.pid if pod.process else 0}",
                    "ready": ready == "True",
                    "started": running,
                    "restartCount": pod.restarts,
                    "state": state,
                }
            ],
        }

    def sync_status(self, pod: RunningPod) -> None:
        status = self.pod_status(pod)
        key = json.dumps(
            {**status, "conditions": [(c["type"], c["status"]) for c in status["conditions"]]},
            sort_keys=True,
        )
        if key == pod.status_sent:
            return
        self.api.request(
            "PATCH",
            f"{self.pods_path(pod)}/{self.mirror_name(pod)}/status",
            {"status": status},
            "application/merge-patch+json",
        )
        pod.status_sent = key
        self.event(pod.name, "status", phase=status["phase"], ready=pod.ready, hash=pod.hash)

    def sync_api(self) -> None:
        try:
            self.register_node()
            self.node_status()
            self.renew_lease()
            for pod in self.pods.values():
                self.ensure_mirror(pod)
                self.sync_status(pod)
        except ApiError as error:
            if error.status == 404:
                # The mirror Pod went (deleted by someone, or the API server restarted empty):
                # created again at the next sync.
                for pod in self.pods.values():
                    pod.mirror_uid = ""
            print(f"API: {error}", flush=True)
        except (OSError, http.client.HTTPException, ssl.SSLError) as error:
            # The API server is down (starting, or restarted by an upgrade): try again.
            print(f"API unreachable: {error}", flush=True)

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        try:
            while not self.stopping:
                self.scan()
                self.keep_running()
                self.probe_all()
                self.sync_api()
                time.sleep(POLL_SECONDS)
        finally:
            for pod in reversed(list(self.pods.values())):
                self.stop_pod(pod, "kubelet stand-in stopping")
            while self.terminating:
                self.reap()
                time.sleep(0.05)
            shutil.rmtree(self.private, ignore_errors=True)


def _die_with_parent() -> None:
    """A component ends when the stand-in does, even killed (prctl PR_SET_PDEATHSIG, SIGKILL):
    nothing outlives the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def main() -> None:
    (config_path,) = sys.argv[1:]
    config = StandInConfig.from_json(Path(config_path).read_text())
    config.logs.mkdir(parents=True, exist_ok=True)
    StandIn(config).run()


if __name__ == "__main__":
    main()
