"""Stand-in kubeadm on the machine: init, its phases, join, reset, and the files they write.

A stand-in (no control plane runs in a scratch root). Modelled on kubernetes v1.36.3
cmd/kubeadm: what each command writes under /etc/kubernetes and /var/lib/etcd (the simulated
machine's, bound over the real paths in the boot's namespace), how it changes the simulated
cluster (nodes, etcd members, tokens, objects), and how it fails:
- preflight (cmd/kubeadm/app/preflight/checks.go, as cmd/phases/init/preflight.go and
  cmd/phases/join/preflight.go run it): the FileAvailable and DirAvailable checks of
  manifests, kubeconfigs, the CA and /var/lib/etcd; the CRI check, which dials
  nodeRegistration.criSocket and fails with "container runtime is not running" unless the
  runtime serves there (ContainerRuntimeCheck, util/runtime/runtime.go IsRunning); the
  KubeletVersion check, which runs `kubelet --version` from PATH (preflight/utils.go
  GetKubeletVersion: "couldn't get kubelet version: cannot execute 'kubelet --version'").
  Failures are "[ERROR NAME]: ..." lines under "[preflight] Some fatal errors occurred".
- init: certs, kubeconfig, control-plane (static pod manifests), kubelet-start and
  wait-control-plane (a new etcd: a new, empty cluster), upload-config, mark-control-plane,
  bootstrap-token, kubelet-finalize, addon; each a step a fault may cut after. With no
  bootstrapTokens kubeadm makes a random token (apis/kubeadm/v1beta4/defaults.go).
- join: discovery with the token and the CA pin (cmd/kubeadm/app/discovery/token), the
  control plane's download-certs and prepare, kubelet-start's TLS bootstrap and the "a Node
  with name ... and status "Ready" already exists" refusal (cmd/phases/join/kubelet.go), the
  etcd member add and its wait (which times out when the member's raft log was lost with an
  old disk), mark-control-plane.
- reset --force: removes this machine's etcd member when it can read the cluster's config,
  stops the kubelet, deletes the manifests, kubeconfigs, PKI and etcd data
  (cmd/kubeadm/app/cmd/phases/reset).
Errors are printed as kubeadm prints them, with its --v=5 hint last, and exit status 1.
"""

from __future__ import annotations

import os
import time

from standin_call import (
    Call,
    clear_dir,
    err,
    exists,
    is_nonempty_dir,
    option,
    out,
    read_text,
    unmodeled,
    write_file,
)
from standin_kubeadm_certs import K8S, PKI, SHARED_CA, KubeadmError, kubeadm_certs
from standin_runtime import cri_error
from standin_selinux import control_plane_denials

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MANIFESTS = K8S + "/manifests"
ETCD_DATA = "/var/lib/etcd"
KUBELET_CONF = K8S + "/kubelet.conf"
BOOTSTRAP_CONF = K8S + "/bootstrap-kubelet.conf"
ADMIN_CONF = K8S + "/admin.conf"
ETCD_MANIFEST = MANIFESTS + "/etcd.yaml"
APISERVER_MANIFEST = MANIFESTS + "/kube-apiserver.yaml"
CONTROL_PLANE_MANIFESTS = (
    "kube-apiserver.yaml",
    "kube-controller-manager.yaml",
    "kube-scheduler.yaml",
)
LEAF_CERTS = (
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "front-proxy-client",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
)
KUBECONFIGS = ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf")
RESET_FILES = (*KUBECONFIGS, "kubelet.conf", "bootstrap-kubelet.conf")
STACK_TRACE_HINT = "To see the stack trace of this error execute with --v=5 or higher"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def preflight_error(errors: list[str]) -> KubeadmError:
    return KubeadmError(
        "preflight",
        "[preflight] Some fatal errors occurred:\n"
        + "".join(f"\t{e}\n" for e in errors)
        + "[preflight] If you know what you are doing, you can make a check non-fatal with "
        "`--ignore-preflight-errors=...`",
    )


def on_path(command: str) -> bool:
    """Whether PATH holds an executable `command`, as Go's exec.LookPath finds it."""
    return any(
        os.access(os.path.join(directory, command), os.X_OK)
        and os.path.isfile(os.path.join(directory, command))
        for directory in os.environ.get("PATH", "").split(":")
        if directory
    )


def common_checks(call: Call) -> list[str]:
    """The checks of addCommonChecks a simulated machine can fail: the runtime at the CRI
    socket, and the kubelet that `kubelet --version` runs."""
    errors = []
    problem = cri_error(call.machine, call.facts["cri_socket"])
    if problem is not None:
        errors.append(f"[ERROR CRI]: container runtime is not running: {problem}")
    if not on_path("kubelet"):
        errors.append(
            "[ERROR KubeletVersion]: couldn't get kubelet version: cannot execute "
            "'kubelet --version': exec: \"kubelet\": executable file not found in $PATH"
        )
    return errors


def unreachable(call: Call, phase: str, path: str) -> KubeadmError:
    endpoint = call.facts["endpoint"]
    return KubeadmError(
        phase,
        f'Get "https://{endpoint}{path}?timeout=10s": dial tcp {endpoint}: connect: '
        "connection refused",
    )


def kubelet_labels(call: Call) -> dict[str, str]:
    name = call.facts["node_name"]
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        **call.facts["node_labels"],
    }


def kubeconfig_text(call: Call, user: str) -> str:
    return (
        f"# stand-in kubeconfig: {user} at https://{call.facts['endpoint']}\n"
        f"# cluster CA {call.facts['ca_hash']}\n"
    )


def write_certs(call: Call, names: tuple[str, ...]) -> None:
    node = call.facts["node_name"]
    for name in names:
        for suffix, mode in ((".crt", 0o644), (".key", 0o600)):
            write_file(f"{PKI}/{name}{suffix}", f"stand-in {name}{suffix} of {node}\n", mode)


def write_manifests(names: tuple[str, ...]) -> None:
    for name in names:
        write_file(f"{MANIFESTS}/{name}", f"# stand-in static pod manifest {name}\n", 0o600)


def register_node(call: Call) -> None:
    """What the kubelet does once it has its credentials: create its Node, or adopt the old one.

    An existing Node keeps its labels: the kubelet only refreshes its default labels on it.
    """
    name = call.facts["node_name"]
    nodes = call.cluster["nodes"]
    labels = kubelet_labels(call)
    if name in nodes:
        old = nodes[name]
        defaults = {k: v for k, v in labels.items() if k not in call.facts["node_labels"]}
        old["labels"] = {**old["labels"], **defaults}
        old.update(kubelet="running", heartbeat_from=call.machine["incarnation"], adopted=True)
    else:
        nodes[name] = {
            "labels": labels,
            "taints": [],
            "kubelet": "running",
            "heartbeat_from": call.machine["incarnation"],
        }


def mark_control_plane(call: Call) -> None:
    node = call.cluster["nodes"][call.facts["node_name"]]
    node["labels"][CONTROL_PLANE_LABEL] = ""
    node["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    taint = {"effect": "NoSchedule", "key": CONTROL_PLANE_LABEL}
    node["taints"] = [taint, *(t for t in node["taints"] if t != taint)]


def peer_url(call: Call) -> str:
    return f"https://{call.facts['advertise_address']}:2380"


def local_etcd_incarnation() -> str | None:
    try:
        return read_text(ETCD_DATA + "/member/incarnation").strip()
    except FileNotFoundError:
        return None


def start_local_etcd(call: Call) -> None:
    # The level of the etcd pod: its patch's, or random MCS categories for each new sandbox.
    call.machine["etcd_level"] = call.facts["etcd_selinux_level"] or "random"
    write_file(ETCD_DATA + "/member/incarnation", call.machine["incarnation"] + "\n", 0o600)
    member = call.cluster["etcd"][peer_url(call)]
    member.update(name=call.facts["node_name"], started=True, data=call.machine["incarnation"])


def check_config(call: Call) -> None:
    path = option(call.args, "--config")
    configs = call.machine["facts"]["configs"]
    if path is None or path not in configs:
        raise KubeadmError("preflight", f"unable to read config from {path!r}")
    import hashlib

    with open(path, "rb") as config:
        digest = hashlib.sha256(config.read()).hexdigest()
    facts = configs[path]
    if digest != facts["sha256"]:
        raise KubeadmError("preflight", f"{path} is not the configuration Ignition wrote")
    call.config_facts = {
        "config_path": path,
        "kind": facts["kind"],
        "token": facts["token"],
        "endpoint": facts["endpoint"],
        "ca_cert_hashes": facts["pinned"],
        "control_plane": facts["control_plane"],
        "certificate_key": facts.get("certificate_key"),
        "cri_socket": facts["cri_socket"],
    }


def kubeadm_init(call: Call) -> None:
    facts = call.facts
    if facts["kind"] != "InitConfiguration":
        raise KubeadmError(
            "preflight", "no InitConfiguration or ClusterConfiguration kind was found"
        )
    errors = [
        f"[ERROR FileAvailable--etc-kubernetes-manifests-{m}]: {MANIFESTS}/{m} already exists"
        for m in (*CONTROL_PLANE_MANIFESTS, "etcd.yaml")
        if exists(f"{MANIFESTS}/{m}")
    ]
    errors += common_checks(call)
    if is_nonempty_dir(ETCD_DATA):
        errors.append(f"[ERROR DirAvailable--var-lib-etcd]: {ETCD_DATA} is not empty")
    if errors:
        raise preflight_error(errors)
    out(
        f"[init] Using Kubernetes version: {facts['kubernetes_version']}",
        "[preflight] Running pre-flight checks",
    )
    for name in SHARED_CA:
        if not exists(f"{PKI}/{name}"):
            # kubeadm makes a new CA where it finds none: a cluster no pinned hash trusts.
            write_file(f"{PKI}/{name}", f"stand-in {name} generated by kubeadm init\n", 0o600)
            call.machine["generated_ca"] = True
    write_certs(call, LEAF_CERTS)
    call.step("certs")
    for name in KUBECONFIGS:
        write_file(f"{K8S}/{name}", kubeconfig_text(call, f"kubernetes-{name}"), 0o600)
    write_file(KUBELET_CONF, kubeconfig_text(call, f"system:node:{facts['node_name']}"), 0o600)
    call.step("kubeconfig")
    write_manifests(("etcd.yaml", *CONTROL_PLANE_MANIFESTS))
    call.step("control-plane")
    denials = control_plane_denials(call)
    if denials:
        # The static pods crash-loop on what SELinux denies them; kubeadm waits, then gives up.
        err(*(f"audit: {denial}" for denial in denials))
        raise KubeadmError(
            "wait-control-plane",
            "failed while waiting for the control plane to start: kube-apiserver check failed "
            f"at https://{call.facts['advertise_address']}:6443/livez: connection refused",
        )
    # kubelet-start and wait-control-plane: a new etcd, so a new, empty cluster.
    call.machine["kubelet"].update(configured=True, running=True)
    cluster = call.cluster
    cluster.update(
        initialized=True,
        api="up",
        api_host=facts["node_name"],
        generation=int(cluster.get("generation", 0)) + 1,
        ca_hash=facts["ca_hash"],
        nodes={},
        etcd={peer_url(call): {"name": facts["node_name"], "started": False, "data": None}},
        tokens=[],
        objects=[],
    )
    start_local_etcd(call)
    register_node(call)
    call.step("wait-control-plane")
    cluster["objects"] += [
        "configmap/kube-system/kubeadm-config",
        "configmap/kube-system/kubelet-config",
    ]
    call.step("upload-config")
    mark_control_plane(call)
    call.step("mark-control-plane")
    init_phase_bootstrap_token(call)
    call.step("bootstrap-token")
    init_phase_kubelet_finalize(call)
    call.step("kubelet-finalize")
    init_phase_addon(call)
    call.step("addon", last=True)
    out("Your Kubernetes control-plane has initialized successfully!")


# With no bootstrapTokens in its config, kubeadm makes one random token that expires after 24 h
# (v1beta4 defaults.go); one constant stands for it here, so that runs compare.
KUBEADM_DEFAULT_TOKEN = "kubeadm-default-token-24h"


def init_phase_bootstrap_token(call: Call) -> None:
    cluster = call.cluster
    token = call.facts["token"] or KUBEADM_DEFAULT_TOKEN
    if token not in cluster["tokens"]:
        cluster["tokens"].append(token)
    for obj in ("configmap/kube-public/cluster-info", "rbac/kubeadm:bootstrap-signer-clusterinfo"):
        if obj not in cluster["objects"]:
            cluster["objects"].append(obj)


def init_phase_kubelet_finalize(call: Call) -> None:
    text = kubeconfig_text(call, f"system:node:{call.facts['node_name']}")
    write_file(
        KUBELET_CONF,
        text + "# client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n",
        0o600,
    )


def init_phase_addon(call: Call) -> None:
    for obj in ("deployment/kube-system/coredns", "daemonset/kube-system/kube-proxy"):
        if obj not in call.cluster["objects"]:
            call.cluster["objects"].append(obj)


INIT_PHASES: dict[str, Callable[[Call], None]] = {
    "bootstrap-token": init_phase_bootstrap_token,
    "kubelet-finalize": init_phase_kubelet_finalize,
    "addon": init_phase_addon,
    "mark-control-plane": mark_control_plane,
}


def kubeadm_init_phase(call: Call) -> None:
    words = [a for a in call.args if not a.startswith("-") and a != option(call.args, "--config")]
    phase = words[2] if len(words) > 2 else ""
    if phase not in INIT_PHASES or words[3:] not in ([], ["all"]):
        raise KubeadmError(phase, f"stand-in: unmodeled init phase {words[2:]}")
    if not exists(ADMIN_CONF):
        raise KubeadmError(phase, f"couldn't read kubeconfig file {ADMIN_CONF}: no such file")
    if call.fault.get("do") == "unreachable" or not call.api_up():
        raise unreachable(call, phase, "/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    INIT_PHASES[phase](call)
    call.step(phase, last=True)
    out(f"[{phase}] done")


def kubeadm_reset(call: Call) -> None:
    if call.args != ["reset", "--force"]:
        raise KubeadmError("reset", f"stand-in: unmodeled reset flags {call.args[1:]}")
    name = call.facts["node_name"]
    cluster = call.cluster
    node = cluster["nodes"].get(name)
    # kubeadm reset reads the cluster's configuration with admin.conf, and this node's API
    # endpoint from its kube-apiserver mirror pod; without both it cannot touch etcd.
    config_from_cluster = (
        exists(ADMIN_CONF) and exists(APISERVER_MANIFEST) and node is not None and call.api_up()
    )
    clean_etcd_data = exists(ETCD_MANIFEST) or config_from_cluster
    if config_from_cluster:
        etcd = cluster["etcd"]
        if cluster.get("api_host") == name and len(etcd) <= 1:
            # The only etcd member: removing its data removes the cluster.
            cluster.update(initialized=False, api="down", nodes={}, etcd={}, tokens=[], objects=[])
            node = None
        elif peer_url(call) in etcd:
            out(f"[reset] Removing member {peer_url(call)} from the etcd cluster")
            del etcd[peer_url(call)]
    else:
        err("W0000 [reset] Unable to fetch the kubeadm-config ConfigMap from cluster")
        if exists(ETCD_MANIFEST):
            err("W0000 [reset] Failed to remove etcd member, please remove it using etcdctl")
    out("[reset] Stopping the kubelet service")
    call.machine["kubelet"].update(configured=False, running=False)
    ours = node is not None and node.get("heartbeat_from") == call.machine["incarnation"]
    if node is not None and ours and node.get("kubelet") == "running":
        # This machine's kubelet stops; a Node another kubelet keeps Ready stays Ready.
        node.update(kubelet="stopped", stopped_at=time.time())
    if cluster.get("api_host") == name and exists(ETCD_MANIFEST):
        cluster["api"] = "down"
    clear_dir(MANIFESTS)
    for conf in RESET_FILES:
        if exists(f"{K8S}/{conf}"):
            os.unlink(f"{K8S}/{conf}")
    clear_dir(PKI)
    if os.path.isdir(PKI):
        os.rmdir(PKI)
    if clean_etcd_data:
        clear_dir(ETCD_DATA)
        call.machine["etcd_level"] = None
    else:
        out("[reset] No etcd config found. Assuming external etcd")
    call.step("reset", last=True)
    out("[reset] Deleted contents of: [/etc/kubernetes/manifests /etc/kubernetes/pki]")


def kubeadm(call: Call) -> int:
    words = [a for a in call.args if not a.startswith("-")]
    try:
        if words[:2] == ["init", "phase"]:
            check_config(call)
            kubeadm_init_phase(call)
        elif words[:1] == ["init"] and len(words) == 2:
            check_config(call)
            kubeadm_init(call)
        elif words[:1] == ["join"] and len(words) == 2:
            from standin_kubeadm_join import kubeadm_join

            check_config(call)
            kubeadm_join(call)
        elif words[:1] == ["reset"]:
            kubeadm_reset(call)
        elif words[:1] == ["certs"]:
            kubeadm_certs(call)
        else:
            return unmodeled(call)
    except KubeadmError as error:
        # As kubeadm does: the error, then a hint, on stderr; exit status 1.
        err(str(error), STACK_TRACE_HINT)
        return 1
    return 0
