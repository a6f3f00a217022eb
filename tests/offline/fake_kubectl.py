#!/usr/bin/env python3
"""A stand-in kubectl for the operator-side scripts: a tiny cluster kept in a JSON file.

Why a stand-in at all: the real kubectl against a real control plane runs these scripts'
ordinary paths in tests/real/test_control_plane_real.py (the gates, a worker's clean and rejoin
wait, a drain). What stays here are the faults a real cluster on this machine cannot be made to
produce on demand or in bounded time: an API server that is down, forbidden or the wrong server
mid-run, a PodDisruptionBudget that blocks a drain until its timeout (on a virtual clock, so a
600 s timeout costs nothing), a NotReady Node whose pods stay Terminating, and a controller's
`kubectl exec` into a peer's etcd (kwok runs no containers to exec into).

State ($FAKE_CLUSTER/state.json):
  "api": "up", or "down", "forbidden", "wrong-server" (failures other than NotFound);
  "nodes": {name: {"bootID", "ready": "True"|"False"|"Unknown", "unschedulable"}};
  "pods": [{"name", "namespace", "node", "owner": "ReplicaSet"|"StatefulSet"|"DaemonSet"|"Node"
            (a static pod's mirror)|null, "app", "emptyDir", "grace" (default 30),
            "stops_after" (seconds its kubelet takes to stop it, default 1),
            "deletion" (its DeletionTimestamp, in seconds from now, when it is terminating)}];
  "pdbs": [{"name", "namespace", "app", "desiredHealthy", "currentHealthy"}];
  "etcd": [member names], "etcd_down": [controllers] (a member removed through `member remove`
  joins them: its etcd stops itself, etcd-io/etcd server/etcdserver/server.go applyAll, "the
  member has been permanently removed from the cluster");
  "rejoin_after": polls, "rejoin_as": {"bootID", "ready"};
  "secrets": {"<namespace>/<name>": a Secret as created, with its metadata.uid}
  (a node counts as a control-plane one when its "labels" hold
  node-role.kubernetes.io/control-plane; "control_plane_after": polls of that list before
  the machine named "joining" gets the label, as its kubeadm join's mark-control-plane does);
  "configmaps": {name: {"labels": {...}, "data": {...}}} (in kube-system: the machines' status
            reports, components/status_report.py).
Every call is appended to calls.jsonl with the kubeconfig file's mode.

`kubectl drain` is modelled on kubernetes/kubectl v0.36.3 (Kubernetes 1.36), run against a
virtual clock so that a test does not wait for its timeout:
- pkg/cmd/drain/drain.go RunDrain: cordon ("node/<n> cordoned"), list the pods, evict them,
  "node/<n> drained"; on an error, "There are pending pods in node ..." with a "pod/<name>"
  line per pod still to go, "error: unable to drain node ...", exit 1;
- pkg/drain/filters.go: pods already deleted longer ago than --skip-wait-for-delete-timeout
  are skipped, DaemonSet pods need --ignore-daemonsets (and stay), mirror pods stay, emptyDir
  pods need --delete-emptydir-data, pods without a controller need --force;
- pkg/drain/drain.go evictPods: an eviction refused with 429 is retried every 5 s until
  --timeout ("global timeout reached"); an admitted one is waited for, polling every second,
  until the pod is gone ("pod/<name> evicted"), skipped once its DeletionTimestamp is older
  than --skip-wait-for-delete-timeout, or the timeout ("context deadline exceeded");
- the Eviction API (kubernetes pkg/registry/core/pod/storage/eviction.go): a pod already
  terminating is deleted without a budget check (canIgnorePDB); a pod that is not Ready is
  evicted when its budget has currentHealthy >= desiredHealthy; otherwise a budget with no
  disruption allowed answers 429 "Cannot evict pod as it would violate the pod's disruption
  budget."; an admitted eviction sets DeletionTimestamp to now + grace period (apiserver
  pkg/registry/rest/delete.go BeforeDelete);
- a pod is gone when its kubelet has stopped it, which happens only on a Ready Node: on a
  NotReady one it stays Terminating (the node lifecycle controller marks its pods not Ready).
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, NoReturn

cluster = Path(os.environ["FAKE_CLUSTER"])
state_file = cluster / "state.json"
state: dict[str, Any] = json.loads(state_file.read_text())
args = sys.argv[1:]
kubeconfig = args[args.index("--kubeconfig") + 1]
with (cluster / "calls.jsonl").open("a") as log:
    mode = stat.S_IMODE(os.stat(kubeconfig).st_mode)
    log.write(json.dumps({"args": args, "kubeconfig_mode": oct(mode)}) + "\n")

EVICT_RETRY_SECONDS = 5  # pkg/cmd/drain/drain.go: EvictErrorRetryDelay
TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."


def save() -> None:
    state_file.write_text(json.dumps(state))


def not_found(name: str) -> NoReturn:
    sys.exit(f'Error from server (NotFound): nodes "{name}" not found')


def render(query: str, node: dict[str, Any]) -> str:
    """The few JSONPath templates the scripts use, on a Node."""
    text = query.replace("{.status.nodeInfo.bootID}", node["bootID"])
    ready = '{range .status.conditions[?(@.type=="Ready")]}{.status}{end}'
    text = text.replace(ready, node["ready"])
    for literal in ("|", " "):
        text = text.replace('{"' + literal + '"}', literal)
    if "{" in text:
        sys.exit(f"fake kubectl: JSONPath not modelled: {query}")
    return text


def render_list(query: str, items: list[dict[str, Any]]) -> str:
    """`-o jsonpath={range .items[*]}...{end}` of a list, as k8s.io/client-go util/jsonpath
    prints it: the body once per item, `{.data.<key>}` empty where the key is missing (kubectl's
    --allow-missing-template-keys defaults to true: k8s.io/cli-runtime
    pkg/genericclioptions/jsonpath_flags.go), `{"|"}` and `{"\n"}` as their text."""
    head, tail = "{range .items[*]}", "{end}"
    if not (query.startswith(head) and query.endswith(tail)):
        sys.exit(f"fake kubectl: JSONPath not modelled: {query}")
    body = query[len(head) : -len(tail)]
    token = re.compile(r'\{(\.metadata\.name|\.data\.[-._a-zA-Z0-9]+|"\|"|"\\n")\}')
    if "{" in token.sub("", body):
        sys.exit(f"fake kubectl: JSONPath not modelled: {query}")

    def value(item: dict[str, Any], match: re.Match[str]) -> str:
        field = match[1]
        if field == ".metadata.name":
            return str(item["name"])
        if field.startswith(".data."):
            return str(item["data"].get(field.removeprefix(".data."), ""))
        return "\n" if field == '"\\n"' else "|"

    output = [token.sub(functools.partial(value, item), body) for item in items]
    return "".join(output)


def get_configmaps(flags: list[str]) -> str:
    """`kubectl -n kube-system get configmaps -l KEY -o jsonpath=...`: the ConfigMaps that have
    the label KEY (an existence selector, apimachinery pkg/labels selector.go), in name order,
    as the API server lists them from etcd's sorted keys."""
    selector = flags[flags.index("-l") + 1]
    if "=" in selector or "," in selector:
        sys.exit(f"fake kubectl: label selector not modelled: {selector}")
    query = flags[flags.index("-o") + 1].removeprefix("jsonpath=")
    configmaps = state.get("configmaps", {})
    items = [
        {"name": name, "data": configmaps[name].get("data", {})}
        for name in sorted(configmaps)
        if selector in configmaps[name].get("labels", {})
    ]
    return render_list(query, items)


def go_duration(seconds: int) -> str:
    """time.Duration's String(), for whole seconds."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def aggregate(errors: list[str]) -> str:
    """k8s.io/apimachinery utilerrors.NewAggregate(...).Error()."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


class Drain:
    def __init__(self, node_name: str, flags: list[str]) -> None:
        self.name = node_name
        self.ignore_daemonsets = self.delete_emptydir = self.force = False
        self.timeout = 0
        self.skip_wait = 0
        for flag in flags:
            key, _, value = flag.partition("=")
            if key == "--ignore-daemonsets":
                self.ignore_daemonsets = True
            elif key == "--delete-emptydir-data":
                self.delete_emptydir = True
            elif key == "--force":
                self.force = True
            elif key == "--timeout":
                assert value.endswith("s") and value[:-1].isdigit(), f"--timeout={value}"
                self.timeout = int(value[:-1])
            elif key == "--skip-wait-for-delete-timeout":
                self.skip_wait = int(value)
            else:
                sys.exit(f"fake kubectl: drain flag not modelled: {flag}")
        if self.timeout == 0:
            # "zero means infinite": a blocked drain would never end.
            sys.exit("fake kubectl: drain without --timeout would wait forever")

    def skipped(self, pod: dict[str, Any]) -> bool:
        """filters.go shouldSkipPod, at a time `now` seconds into the drain."""
        return "deletion" in pod and self.skip_wait > 0 and -pod["deletion"] > self.skip_wait

    def pods_for_deletion(self) -> tuple[list[dict[str, Any]], list[str], list[str]]:
        """drain.go GetPodsForDeletion: the pods to evict, the errors and the warnings."""
        deletable: list[dict[str, Any]] = []
        failed: dict[str, list[str]] = {}
        ignored: list[str] = []
        for pod in state.get("pods", []):
            if pod["node"] != self.name or self.skipped(pod):
                continue
            ref = f"{pod['namespace']}/{pod['name']}"
            owner = pod.get("owner")
            if owner == "DaemonSet":
                if not self.ignore_daemonsets:
                    reason = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
                    failed.setdefault(reason, []).append(ref)
                else:
                    ignored.append(ref)
            elif owner == "Node":
                continue  # a mirror pod
            elif pod.get("emptyDir") and not self.delete_emptydir:
                reason = "Pods with local storage (use --delete-emptydir-data to override)"
                failed.setdefault(reason, []).append(ref)
            elif owner is None and not self.force:
                reason = "Pods that declare no controller (use --force to override)"
                failed.setdefault(reason, []).append(ref)
            else:
                deletable.append(pod)
        errors = [f"cannot delete {reason}: {', '.join(refs)}" for reason, refs in failed.items()]
        warnings = [f"ignoring DaemonSet-managed Pods: {', '.join(ignored)}"] if ignored else []
        return deletable, errors, warnings

    def admitted(self, pod: dict[str, Any], node_ready: bool) -> bool:
        """Whether the Eviction API admits this pod's eviction now (eviction.go Create)."""
        if "deletion" in pod:
            return True  # canIgnorePDB
        budgets = [
            pdb
            for pdb in state.get("pdbs", [])
            if pdb["namespace"] == pod["namespace"] and pdb["app"] == pod.get("app")
        ]
        if not budgets:
            return True
        pdb = budgets[0]
        if not node_ready and pdb["currentHealthy"] >= pdb["desiredHealthy"] > 0:
            return True
        if pdb["currentHealthy"] - pdb["desiredHealthy"] <= 0:
            return False
        pdb["currentHealthy"] -= 1
        return True

    def evict(self, pod: dict[str, Any], node_ready: bool) -> str | None:
        """One pod's eviction goroutine (drain.go evictPods): None when done, else the error."""
        ref, name, namespace = f"{pod['namespace']}/{pod['name']}", pod["name"], pod["namespace"]
        now = 0
        while True:
            print(f"evicting pod {ref}")
            if now >= self.timeout:
                return (
                    f'error when evicting pods/"{name}" -n "{namespace}": '
                    f"global timeout reached: {go_duration(self.timeout)}"
                )
            if self.admitted(pod, node_ready):
                break
            print(
                f'error when evicting pods/"{name}" -n "{namespace}" (will retry after '
                f"{EVICT_RETRY_SECONDS}s): {TOO_MANY_REQUESTS}",
                file=sys.stderr,
            )
            now += EVICT_RETRY_SECONDS
        pod.setdefault("deletion", now + pod.get("grace", 30))
        gone_at = now + min(pod.get("stops_after", 1), pod.get("grace", 30))
        # waitForDelete: a poll at once, then every second, until the global deadline.
        for poll in range(now, self.timeout):
            if node_ready and poll >= gone_at:
                state["pods"].remove(pod)
                print(f"pod/{name} evicted")
                return None
            if self.skip_wait > 0 and poll - pod["deletion"] > self.skip_wait:
                print(
                    f'pod "{name}" has DeletionTimestamp older than {self.skip_wait} '
                    "seconds, skipping"
                )
                pod["deletion"] -= poll  # as seen from the end of this drain
                return None
        pod["deletion"] -= self.timeout
        return (
            f'error when waiting for pod "{name}" in namespace "{namespace}" to terminate: '
            "context deadline exceeded"
        )

    def run(self) -> int:
        node = state["nodes"].get(self.name)
        if node is None:
            not_found(self.name)
        already = node.get("unschedulable", False)
        node["unschedulable"] = True
        print(f"node/{self.name} {'already cordoned' if already else 'cordoned'}")
        pods, errors, warnings = self.pods_for_deletion()
        if not errors:
            for warning in warnings:
                print(f"Warning: {warning}", file=sys.stderr)
            errors = [e for pod in pods if (e := self.evict(pod, node["ready"] == "True"))]
            if errors:
                pending, _, _ = self.pods_for_deletion()
                if pending:
                    print(
                        f'There are pending pods in node "{self.name}" when an error occurred: '
                        f"{aggregate(errors)}",
                        file=sys.stderr,
                    )
                    for pod in pending:
                        print(f"pod/{pod['name']}", file=sys.stderr)
        save()
        if not errors:
            print(f"node/{self.name} drained")
            return 0
        message = aggregate(errors)
        print(
            f'error: unable to drain node "{self.name}" due to error: {message}, '
            "continuing command...",
            file=sys.stderr,
        )
        print(f"There are pending nodes to be drained:\n {self.name}", file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        return 1


# How kubectl reports a server that does not answer, or answers something else than this
# cluster's API (pkg/cmd/util/helpers.go StandardErrorMessage: "Error from server (<reason>): ...").
API_FAILURES = {
    "down": "The connection to the server 10.0.0.1:6443 was refused - did you specify the right "
    "host or port?",
    "forbidden": 'Error from server (Forbidden): nodes "{node}" is forbidden: User "stranger" '
    'cannot get resource "nodes" in API group "" at the cluster scope',
    "wrong-server": "Error from server (NotFound): the server could not find the requested "
    "resource",
}
rest = [
    a
    for a in args
    if not a.startswith("--kubeconfig")
    and a != kubeconfig
    and not a.startswith("--request-timeout")
]
if state.get("api", "up") != "up":
    sys.exit(API_FAILURES[state["api"]].format(node=rest[2] if len(rest) > 2 else ""))
if rest[:4] == ["-n", "kube-system", "get", "configmaps"]:
    print(get_configmaps(rest[4:]), end="")
elif rest[:2] == ["get", "node"]:
    name = rest[2]
    state["polls"] = state.get("polls", 0) + 1
    if "rejoin_after" in state and state["polls"] > state["rejoin_after"]:
        state["nodes"][name] = state["rejoin_as"]
    save()
    found = state["nodes"].get(name)
    if found is None:
        not_found(name)
    print(render(rest[rest.index("-o") + 1].removeprefix("jsonpath="), found), end="")
elif rest[:1] == ["drain"]:
    sys.exit(Drain(rest[1], rest[2:]).run())
elif rest[:2] == ["delete", "node"]:
    state["nodes"].pop(rest[2], None)
    save()
    print(f'node "{rest[2]}" deleted')
elif rest[:3] == ["-n", "kube-system", "exec"]:
    peer = rest[3].removeprefix("etcd-")
    if peer in state.get("etcd_down", []):
        sys.exit(f"error: unable to upgrade connection: container not found (etcd-{peer})")
    command = rest[rest.index("--") + 1 :]
    members = state["etcd"]
    # Member IDs are fixed when a member is added and never reused, as etcd's are: numbered
    # here in the order first listed, and kept in the state.
    ids = state.setdefault("etcd_ids", {})
    for name in members:
        ids.setdefault(name, max(ids.values(), default=0) + 1)
    save()
    if command[-2:] == ["member", "list"]:
        for name in members:
            urls = f"https://{name}:2380, https://{name}:2379"
            print(f"{ids[name]:016x}, started, {name}, {urls}, false")
    elif command[-3:-1] == ["member", "remove"]:
        (removed,) = [name for name in members if ids[name] == int(command[-1], 16)]
        members.remove(removed)
        state.setdefault("etcd_down", []).append(removed)
        save()
        print(f"Member {command[-1]} removed ({removed})")
elif rest[:3] == ["-n", "kube-system", "get"] and rest[3] == "secret":
    # kubectl get secret NAME -o jsonpath=...: NotFound as the API server says it
    # (apimachinery pkg/api/errors NewNotFound: `secrets "<name>" not found`).
    secret = state.get("secrets", {}).get(f"kube-system/{rest[4]}")
    if secret is None:
        sys.exit(f'Error from server (NotFound): secrets "{rest[4]}" not found')
    query = rest[rest.index("-o") + 1].removeprefix("jsonpath=")
    values = {
        "{.metadata.uid}": secret["metadata"]["uid"],
        "{.metadata.ownerReferences[0].name}": (
            (secret["metadata"].get("ownerReferences") or [{}])[0].get("name", "")
        ),
    }
    if query not in values:
        sys.exit(f"fake kubectl: JSONPath not modelled: {query}")
    print(values[query], end="")
elif rest[:4] == ["-n", "kube-system", "delete", "secret"]:
    # With --ignore-not-found a missing object is no error (kubectl pkg/cmd/delete).
    name = rest[4]
    found = state.get("secrets", {}).pop(f"kube-system/{name}", None)
    if found is None and "--ignore-not-found" not in rest:
        sys.exit(f'Error from server (NotFound): secrets "{name}" not found')
    save()
    if found is not None:
        print(f'secret "{name}" deleted')
elif rest[:2] == ["create", "-f"]:
    # One object; AlreadyExists as the API server refuses a second create
    # (apimachinery pkg/api/errors NewAlreadyExists).
    document = json.loads(Path(rest[2]).read_text())
    metadata = document["metadata"]
    key = f"{metadata['namespace']}/{metadata['name']}"
    secrets = state.setdefault("secrets", {})
    if key in secrets:
        sys.exit(f'Error from server (AlreadyExists): secrets "{metadata["name"]}" already exists')
    metadata["uid"] = f"uid-of-{metadata['name']}"
    secrets[key] = document
    save()
    print(f"secret/{metadata['name']} created")
elif rest[:4] == ["get", "nodes", "-l", "node-role.kubernetes.io/control-plane"]:
    # kubectl get nodes -l <label> --field-selector metadata.name=<n> -o name
    wanted = rest[rest.index("--field-selector") + 1].removeprefix("metadata.name=")
    state["polls"] = state.get("polls", 0) + 1
    if "control_plane_after" in state and state["polls"] > state["control_plane_after"]:
        state["nodes"][state["joining"]].setdefault("labels", {})[
            "node-role.kubernetes.io/control-plane"
        ] = ""
    save()
    node = state["nodes"].get(wanted)
    if node is not None and "node-role.kubernetes.io/control-plane" in node.get("labels", {}):
        print(f"node/{wanted}")
else:
    sys.exit(f"fake kubectl: unexpected {rest}")
