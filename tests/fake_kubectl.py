#!/usr/bin/env python3
"""A stand-in kubectl for the operator-side scripts: a tiny cluster kept in a JSON file.

State ($FAKE_CLUSTER/state.json): {"api": "up"|"down", "nodes": {name: {"bootID", "ready"}},
"etcd": {controller: [member names]}, "etcd_down": [controllers], "rejoin_after": polls,
"rejoin_as": {"bootID", "ready"}}. Every call is appended to calls.jsonl with the kubeconfig
file's mode and whether the credentials were in argv.
"""

import json
import os
import stat
import sys
from pathlib import Path

cluster = Path(os.environ["FAKE_CLUSTER"])
state_file = cluster / "state.json"
state = json.loads(state_file.read_text())
args = sys.argv[1:]
kubeconfig = args[args.index("--kubeconfig") + 1]
with (cluster / "calls.jsonl").open("a") as log:
    mode = stat.S_IMODE(os.stat(kubeconfig).st_mode)
    log.write(json.dumps({"args": args, "kubeconfig_mode": oct(mode)}) + "\n")


def save() -> None:
    state_file.write_text(json.dumps(state))


if state.get("api") == "down":
    sys.exit("The connection to the server 10.0.0.1:6443 was refused")
rest = [
    a
    for a in args
    if not a.startswith("--kubeconfig")
    and a != kubeconfig
    and not a.startswith("--request-timeout")
]
if rest[:2] == ["get", "node"]:
    name = rest[2]
    state["polls"] = state.get("polls", 0) + 1
    if "rejoin_after" in state and state["polls"] > state["rejoin_after"]:
        state["nodes"][name] = state["rejoin_as"]
    save()
    node = state["nodes"].get(name)
    if node is None:
        sys.exit(f'Error from server (NotFound): nodes "{name}" not found')
    query = rest[rest.index("-o") + 1]
    print(
        node["bootID"]
        if query.endswith("{.status.nodeInfo.bootID}")
        else f"{node['bootID']} {node['ready']}",
        end="",
    )
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
    if command[-2:] == ["member", "list"]:
        for index, name in enumerate(members):
            urls = f"https://{name}:2380, https://{name}:2379"
            print(f"{index + 1:016x}, started, {name}, {urls}, false")
    elif command[-3:-1] == ["member", "remove"]:
        removed = members.pop(int(command[-1], 16) - 1)
        save()
        print(f"Member {command[-1]} removed ({removed})")
else:
    sys.exit(f"fake kubectl: unexpected {rest}")
