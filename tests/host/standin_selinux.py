"""Stand-in SELinux tools (selinuxenabled, chcon) and what the policy lets the static pods do.

A stand-in (a scratch root has no SELinux policy loaded). What it follows:
- Fedora CoreOS enforces SELinux. The labels of the paths modelled are the policy's
  (container-selinux container.fc and the base policy): /etc/kubernetes kubernetes_file_t,
  which no container domain may read (container.te), /var/lib/etcd var_lib_t, /var var_t.
- containerd with `enable_selinux = true` (ignition/files/templates/containerd-config.toml) runs a
  container that is not privileged as container_t with a unique MCS category pair, whatever
  its host namespaces (containerd v2.2.9 internal/cri/server/podsandbox/sandbox_run_linux.go,
  internal/cri/server/container_create.go: the label comes from the pod's seLinuxOptions,
  else the policy's lxc_contexts; only a privileged container gets none); such a
  container may use host files labelled container_file_t only (kubernetes/kubeadm#279: etcd
  denied write on /var/lib/etcd, var_lib_t).
- `chcon [-R] [-u USER] [-r ROLE] [-t TYPE] [-l RANGE] FILE...` (GNU coreutils chcon(1)) sets
  the label of each FILE (and, with -R, of everything below it); what is made later in a
  directory inherits its label. The labels set are kept in the machine's state.
"""

from __future__ import annotations

import os

from standin_call import Call, err, exists, unmodeled

K8S = "/etc/kubernetes"
PKI = K8S + "/pki"
ETCD_DATA = "/var/lib/etcd"

# The policy's labels (container-selinux container.fc, the base policy) of the paths modelled.
POLICY_LABELS = {K8S: "kubernetes_file_t", ETCD_DATA: "var_lib_t", "/var": "var_t"}
CONTAINER_FILE = "container_file_t"


def selinux_label(call: Call, path: str) -> tuple[str, str]:
    """A path's type and level: what chcon set on it or above it (what is made in a directory
    inherits its label), else the policy's label."""
    labels = call.machine["selinux"]["labels"]
    above = [p for p in labels if path == p or path.startswith(p.rstrip("/") + "/")]
    if above:
        label = labels[max(above, key=len)]
        return str(label["type"]), str(label["level"])
    policy = [p for p in POLICY_LABELS if path == p or path.startswith(p + "/")]
    return (POLICY_LABELS[max(policy, key=len)] if policy else "default_t"), "s0"


def control_plane_denials(call: Call) -> list[str]:
    """What SELinux denies the control-plane static pods (confined, container_t) on this
    machine: reading /etc/kubernetes (kubernetes_file_t, which no container domain may read),
    writing /var/lib/etcd; the audit records the journal would show."""
    if not call.machine["selinux"]["enabled"]:
        return []
    level = call.facts["etcd_selinux_level"] or "s0:c123,c456"
    denials = []
    for comm, path, perm in (("kube-apiserver", PKI, "read"), ("etcd", ETCD_DATA, "write")):
        kind, file_level = selinux_label(call, path)
        if kind != CONTAINER_FILE:
            denials.append(
                f'avc:  denied  {{ {perm} }} for comm="{comm}" name="{os.path.basename(path)}" '
                f"scontext=system_u:system_r:container_t:{level} "
                f"tcontext=system_u:object_r:{kind}:{file_level} tclass=dir permissive=0"
            )
    return denials


def selinuxenabled(call: Call) -> int:
    if call.args:
        return unmodeled(call)
    return 0 if call.machine["selinux"]["enabled"] else 1


def chcon(call: Call) -> int:
    """chcon [-R] [-u USER] [-r ROLE] [-t TYPE] [-l RANGE] FILE... (coreutils); the labels it
    sets are kept in the machine's state."""
    args = call.args
    recursive, fields, files = False, {}, []
    names = {"-u": "user", "-r": "role", "-t": "type", "-l": "level"}
    longs = {"--user": "-u", "--role": "-r", "--type": "-t", "--range": "-l"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-R", "--recursive"):
            recursive = True
        elif arg in names and i + 1 < len(args):
            fields[names[arg]] = args[i + 1]
            i += 1
        elif arg.split("=", 1)[0] in longs and "=" in arg:
            fields[names[longs[arg.split("=", 1)[0]]]] = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return unmodeled(call)
        else:
            files.append(arg)
        i += 1
    if not fields:
        if not files:
            err("chcon: missing operand")
            return 1
        user, role, kind, level = [*files.pop(0).split(":", 3), "", "", "", ""][:4]
        fields = {"user": user, "role": role, "type": kind, "level": level or "s0"}
    if not files:
        err("chcon: missing operand")
        return 1
    selinux = call.machine["selinux"]
    rc = 0
    for path in files:
        if not exists(path):
            err(f"chcon: cannot access '{path}': No such file or directory")
            rc = 1
            continue
        if not selinux["enabled"]:
            err(f"chcon: can't apply partial context to unlabeled file '{path}'")
            rc = 1
            continue
        kind, level = selinux_label(call, path)
        label = {"type": fields.get("type", kind), "level": fields.get("level", level)}
        if recursive:
            for below in [p for p in selinux["labels"] if p.startswith(path.rstrip("/") + "/")]:
                del selinux["labels"][below]
        selinux["labels"][path] = label
    call.step("chcon", last=True)
    return rc
