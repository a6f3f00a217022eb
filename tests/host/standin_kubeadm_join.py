"""Stand-in `kubeadm join`: discovery, the control plane's preparation, the kubelet's TLS
bootstrap, the etcd member, mark-control-plane (see standin_kubeadm.py for the sources).

A stand-in. The real `kubeadm join` of a worker, cut by a power cut at its kubelet-start and
run again by the setup, joins the real control plane on the real node guest
(tests/lab/test_lab_node.py); a controller's join runs only here. Modelled on kubernetes
v1.36.3 cmd/kubeadm: join's preflight
(cmd/phases/join/preflight.go: the kubelet's kubeconfigs and, for a worker, the CA must not
exist; the common checks; a control plane's init-node checks), token discovery with the CA
pin (app/discovery/token/token.go), control-plane-prepare (download-certs, then the leaf
certificates, kubeconfigs and manifests; with a certificate key preflight does not look for the
shared CA material, preflight.go checkIfReadyForAdditionalControlPlane), kubelet-start
(cmd/phases/join/kubelet.go: refused while a Ready Node of the same name exists), and
control-plane-join (etcd member add, the etcd manifest and its wait, mark-control-plane).
"""

from __future__ import annotations

import os

from standin_call import Call, err, exists, is_nonempty_dir, out, write_file
from standin_kubeadm import (
    BOOTSTRAP_CONF,
    CONTROL_PLANE_MANIFESTS,
    ETCD_DATA,
    KUBELET_CONF,
    LEAF_CERTS,
    MANIFESTS,
    common_checks,
    kubeconfig_text,
    local_etcd_incarnation,
    mark_control_plane,
    peer_url,
    preflight_error,
    register_node,
    start_local_etcd,
    unreachable,
    write_certs,
    write_manifests,
)
from standin_kubeadm_certs import K8S, PKI, SHARED_CA, KubeadmError, download_certs
from standin_selinux import control_plane_denials


def discovery(call: Call) -> None:
    """`kubeadm join` preflight: fetch cluster-info with the token and check the CA pin."""
    if call.fault.get("do") == "unreachable" or not call.api_up():
        raise unreachable(
            call, "preflight", "/api/v1/namespaces/kube-public/configmaps/cluster-info"
        )
    token = call.facts["token"]
    cluster = call.cluster
    if (
        token not in cluster["tokens"]
        or "configmap/kube-public/cluster-info" not in cluster["objects"]
    ):
        raise KubeadmError(
            "preflight",
            "couldn't validate the identity of the API Server: could not find a JWS signature "
            f'in the cluster-info ConfigMap for token ID "{token.split(".")[0]}"',
        )
    if cluster["ca_hash"] not in call.facts["ca_cert_hashes"]:
        raise KubeadmError(
            "preflight",
            "couldn't validate the identity of the API Server: cluster CA found in cluster-info "
            f'ConfigMap is invalid: none of the public keys "{cluster["ca_hash"]}" are pinned',
        )


def kubeadm_join(call: Call) -> None:
    facts = call.facts
    control_plane = bool(facts["control_plane"])
    if facts["kind"] != "JoinConfiguration":
        raise KubeadmError("preflight", "no JoinConfiguration kind was found")
    out("[preflight] Running pre-flight checks")
    errors = []
    if is_nonempty_dir(MANIFESTS):
        errors.append(f"[ERROR DirAvailable--etc-kubernetes-manifests]: {MANIFESTS} is not empty")
    for path in (KUBELET_CONF, BOOTSTRAP_CONF):
        if exists(path):
            check = path.replace("/", "-").lstrip("-")
            errors.append(f"[ERROR FileAvailable--{check}]: {path} already exists")
    errors += common_checks(call)
    if not control_plane and exists(PKI + "/ca.crt"):
        errors.append(
            f"[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: {PKI}/ca.crt already exists"
        )
    if control_plane and is_nonempty_dir(ETCD_DATA):
        errors.append(f"[ERROR DirAvailable--var-lib-etcd]: {ETCD_DATA} is not empty")
    if errors:
        raise preflight_error(errors)
    discovery(call)
    if control_plane:
        if facts.get("certificate_key"):
            # With a certificate key, preflight does not look for the shared CA material
            # (kubernetes cmd/kubeadm/app/cmd/phases/join/preflight.go,
            # checkIfReadyForAdditionalControlPlane with hasCertificateKey):
            # control-plane-prepare's first phase downloads it.
            download_certs(call)
        missing = [f"{PKI}/{name}" for name in SHARED_CA if not exists(f"{PKI}/{name}")]
        if missing:
            raise KubeadmError(
                "preflight",
                "One or more conditions for hosting a new control plane instance is not "
                f"satisfied. [failure loading certificate for CA: couldn't load the certificate "
                f"file {missing[0]}: open {missing[0]}: no such file or directory]",
            )
        write_certs(call, LEAF_CERTS)
        for name in ("admin.conf", "controller-manager.conf", "scheduler.conf"):
            write_file(f"{K8S}/{name}", kubeconfig_text(call, f"kubernetes-{name}"), 0o600)
        write_manifests(CONTROL_PLANE_MANIFESTS)
        call.step("control-plane-prepare")
    # kubelet-start: the bootstrap kubeconfig and the CA first, then the check of the Node.
    write_file(BOOTSTRAP_CONF, kubeconfig_text(call, "bootstrap token"), 0o600)
    if not exists(PKI + "/ca.crt"):
        write_file(PKI + "/ca.crt", "stand-in ca.crt from cluster-info\n")
    call.step("kubelet-start/bootstrap-kubeconfig")
    name = facts["node_name"]
    node = call.cluster["nodes"].get(name)
    if node is not None and call.node_ready(node):
        raise KubeadmError(
            "kubelet-start",
            f'a Node with name "{name}" and status "Ready" already exists in the cluster. You '
            "must delete the existing Node or change the name of this new joining Node",
        )
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    write_file(KUBELET_CONF, kubeconfig_text(call, f"system:node:{name}"), 0o600)
    os.unlink(BOOTSTRAP_CONF)
    call.machine["kubelet"].update(configured=True, running=True)
    call.step("kubelet-start/tls-bootstrap")
    register_node(call)
    call.step("kubelet-start/register-node", last=not control_plane)
    if not control_plane:
        out("This node has joined the cluster")
        return
    # control-plane-join/etcd: add the member (kubeadm skips that when its peer URL is there
    # already), write the manifest, wait for the cluster to see the new member healthy.
    etcd = call.cluster["etcd"]
    etcd.setdefault(peer_url(call), {"name": "", "started": False, "data": None})
    call.step("control-plane-join/etcd-member-add")
    write_manifests(("etcd.yaml",))
    denials = control_plane_denials(call)
    if denials:
        err(*(f"audit: {denial}" for denial in denials))
        raise KubeadmError(
            "control-plane-join/etcd",
            "error creating local etcd static pod manifest file: timeout waiting for etcd "
            "cluster to be available",
        )
    member = etcd[peer_url(call)]
    stale = member["started"] and member["data"] != local_etcd_incarnation()
    if stale:
        # The member's raft log went with the old disk. The new etcd takes its place with an
        # empty one: it writes its WAL, then crash-loops on the leader's commit index.
        write_file(ETCD_DATA + "/member/wal/0000000000000000-0000000000000000.wal", "", 0o600)
    call.step("control-plane-join/etcd-manifest")
    if stale:
        raise KubeadmError(
            "control-plane-join/etcd",
            "error creating local etcd static pod manifest file: timeout waiting for etcd "
            "cluster to be available",
        )
    start_local_etcd(call)
    call.step("control-plane-join/etcd")
    mark_control_plane(call)
    call.step("control-plane-join/mark-control-plane", last=True)
    out("This node has joined the cluster and a new control plane instance was created")
