"""Stand-in container runtime: containerd as Fedora CoreOS ships it, its CRI socket, crictl.

A stand-in (no container runs in a scratch root). The real containerd v2.2.9, with the node's
own config.toml, starts for the setup's node phase and serves the real kubelet's CRI on the
real node guest (tests/lab/test_lab_node.py); no pod runs there either. What it follows:
- containerd.service is Type=notify (containerd/containerd v2.2.9 containerd.service): a start
  job ends once containerd has told systemd it is ready, or fails when it exits first; the
  job of an active unit does nothing. Power-on starts it before the setup unit, which is
  ordered After= it (ignition/files/setup/stubernetes-setup.service); a start that fails
  leaves it inactive until someone starts it again. A test plans failed starts with
  `fail_starts` (each start job, at power-on or by `systemctl start`, uses one).
- Its CRI API listens on the `[grpc] address` of /etc/containerd/config.toml, by default
  /run/containerd/containerd.sock (containerd defaults/defaults_linux.go DefaultAddress); /run
  is a tmpfs, so at power-on no socket exists until containerd starts.
- A CRI client (kubeadm's preflight, crictl) that dials a socket nobody serves gets gRPC's
  "Unavailable ... dial unix PATH: connect: no such file or directory"; kubeadm reports it as
  "container runtime is not running" (kubernetes v1.36.3 cmd/kubeadm/app/util/runtime/
  runtime.go IsRunning), crictl as "validate service connection: validate CRI v1 runtime API
  for endpoint ..." (kubernetes-sigs/cri-tools cmd/crictl/main.go). crictl takes its endpoint
  from --runtime-endpoint, else CONTAINER_RUNTIME_ENDPOINT, else it tries containerd's socket
  first (cri-tools docs/crictl.md, "defaultRuntimeEndpoints").
- crictl is not in the Fedora CoreOS image: setup unpacks it into /usr/local/bin from the
  archive Ignition fetched (ignition/node_binaries.py); on the simulated host that archive holds
  the stand-in program, and this is its model of `crictl ps` and `crictl stop`.
- The kubelet's static pods: a container for each manifest in /etc/kubernetes/manifests while
  the kubelet runs; one that was stopped is started again (restartPolicy Always) with the
  certificates on disk at that moment.
"""

from __future__ import annotations

import os

from standin_call import Call, err, exists, option, out, unmodeled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from standin_call import JSON

CONTAINERD = "containerd.service"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
CRICTL_DEFAULT_ENDPOINTS = (f"unix://{DEFAULT_ADDRESS}", "unix:///run/crio/crio.sock")
MANIFESTS = "/etc/kubernetes/manifests"


def grpc_address(root: str) -> str:
    """The `address` of the `[grpc]` table of containerd's config in `root`, or its default."""
    section = ""
    try:
        with open(root + CONTAINERD_CONFIG) as config:
            lines = config.read().splitlines()
    except FileNotFoundError:
        return DEFAULT_ADDRESS
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section == "grpc" and line.partition("=")[0].strip() == "address":
            return line.partition("=")[2].strip().strip('"')
    return DEFAULT_ADDRESS


def runtime(machine: JSON) -> JSON:
    """containerd's state on this machine: running (in this boot), the address it serves, the
    failed starts still planned, and every start job (who asked, how it ended)."""
    state: JSON = machine.setdefault(
        "containerd", {"running": False, "address": None, "fail_starts": 0, "starts": []}
    )
    return state


def power_off(machine: JSON) -> None:
    """Nothing runs after a power cycle, and /run is empty."""
    runtime(machine).update(running=False, address=None)


def start_containerd(machine: JSON, root: str, by: str) -> str | None:
    """One start job: None once containerd runs, else why the job failed (systemd's words)."""
    state = runtime(machine)
    if state["running"]:
        return None
    if state["fail_starts"] > 0:
        state["fail_starts"] -= 1
        state["starts"].append([by, "failed"])
        return "the control process exited with error code"
    state.update(running=True, address=grpc_address(root))
    state["starts"].append([by, "running"])
    return None


def cri_error(machine: JSON, endpoint: str) -> str | None:
    """Why a CRI client cannot reach the runtime at `endpoint` (unix:///path), or None."""
    path = endpoint.removeprefix("unix://")
    state = runtime(machine)
    if state["running"] and state["address"] == path:
        return None
    return (
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
        f'dialing: dial unix {path}: connect: no such file or directory"'
    )


# ------------------------------------------------------------------------ static pods, crictl


def static_pods(call: Call) -> dict[str, JSON]:
    """The kubelet's view of the static pods by the time someone asks: a container for each
    manifest in /etc/kubernetes/manifests while the kubelet runs; one that was stopped has been
    restarted (restartPolicy Always) with whatever certificates are on disk now."""
    from standin_kubeadm_certs import COMPONENT_CERTS, KUBEADM_CERTS, certificate_expiry

    containers: dict[str, JSON] = call.machine.setdefault("containers", {})
    events: list[list[str]] = call.machine.setdefault("container_events", [])
    if not call.machine["kubelet"]["running"]:
        return {}
    running = {}
    for component, certs in COMPONENT_CERTS.items():
        if not exists(f"{MANIFESTS}/{component}.yaml"):
            continue
        container = containers.get(component)
        if container is None or container["state"] != "running":
            import hashlib

            starts = len(events) + 1
            seed = f"{call.machine['incarnation']}/{component}/{starts}"
            container = containers[component] = {
                "id": hashlib.sha256(seed.encode()).hexdigest(),
                "state": "running",
                "loaded": {
                    c: certificate_expiry(call, c) for c in certs if exists(KUBEADM_CERTS[c][0])
                },
            }
            events.append(["start", component, container["id"]])
        running[component] = container
    return running


def crictl_endpoint(args: list[str]) -> str | None:
    """The endpoint crictl dials, or None when it would try its defaults in turn."""
    given = option(args, "--runtime-endpoint") or option(args, "-r")
    return given or os.environ.get("CONTAINER_RUNTIME_ENDPOINT") or None


def crictl_connect(call: Call) -> bool:
    endpoint = crictl_endpoint(call.args)
    tried = [endpoint] if endpoint else list(CRICTL_DEFAULT_ENDPOINTS)
    for candidate in tried:
        if cri_error(call.machine, candidate) is None:
            return True
    failed = tried[-1]
    err(
        f'validate service connection: validate CRI v1 runtime API for endpoint "{failed}": '
        + str(cri_error(call.machine, failed))
    )
    return False


def crictl(call: Call) -> int:
    args = call.args
    words = [a for a in args if not a.startswith("-")]
    if words[:1] == ["ps"]:
        pattern, state = option(args, "--name"), option(args, "--state")
        if "-q" not in args or state != "running" or pattern is None:
            return unmodeled(call)
        if len(words) != 1 + len([a for a in (pattern, state) if a in words]):
            return unmodeled(call)
        if not crictl_connect(call):
            return 1
        import re

        # crictl matches --name as a regular expression on the container's name.
        ids = [c["id"] for n, c in static_pods(call).items() if re.search(pattern, n)]
        call.step("ps", last=True)
        out(*ids)
        return 0
    if words[:1] == ["stop"]:
        timeout = option(args, "--timeout") or option(args, "-t")
        ids = [w for w in words[1:] if w != timeout]
        if len(ids) != 1:
            return unmodeled(call)
        if not crictl_connect(call):
            return 1
        running = static_pods(call)
        found = [n for n, c in running.items() if c["id"] == ids[0]]
        if not found:
            err(f'rpc error: code = NotFound desc = could not find container "{ids[0]}"')
            return 1
        call.machine["containers"][found[0]]["state"] = "exited"
        call.machine["container_events"].append(["stop", found[0], ids[0]])
        call.step("stop", last=True)
        out(ids[0])
        return 0
    return unmodeled(call)
