#!/usr/bin/env python3
"""A stand-in kubectl for components/scripts/upgrade-machine: one Node and its upgrade ConfigMap
in a JSON file ($UPGRADE_CLUSTER/state.json), and the machine's upgrade service answering there.

A stand-in because no real kubelet can be upgraded here. What it models:
- `get node N -o jsonpath=...`: status.nodeInfo.kubeletVersion, bootID, the Ready condition
  and spec.unschedulable, as the kubelet and kubectl report them (kubernetes
  pkg/kubelet/nodestatus/setters.go VersionInfo); NotFound when "node" is null;
- `drain N ...` and `uncordon N`: the Node's spec.unschedulable (kubectl pkg/cmd/drain); the
  drain prints "node/N drained", or fails as kubectl does at its timeout when "drain_blocked";
- `patch configmap C --type merge -p BODY` (RFC 7386 on `data`) and `get configmap C -o
  jsonpath={.data.K}...` (a missing key prints nothing);
- the machine: "answer_after" polls of the ConfigMap after an ask, it sets the Node's
  kubeletVersion to v<release> ("answer": "done"), or reports state=failed with "error"
  ("answer": "failed"), or never answers ("answer": "none").
Every call is appended to calls.jsonl.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

STATE = Path(os.environ["UPGRADE_CLUSTER"]) / "state.json"


def main(argv: list[str]) -> int:
    state = json.loads(STATE.read_text())
    with open(STATE.parent / "calls.jsonl", "a") as log:
        log.write(json.dumps(argv) + "\n")
    # Without the flags every call has: --kubeconfig FILE, --request-timeout=..., -n NAMESPACE.
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("--request-timeout"):
            skip = False
            continue
        if arg in ("--kubeconfig", "-n"):
            skip = True
            continue
        args.append(arg)
    node = state["node"]
    data = state["configmap"]
    verb = args[0]
    if verb == "get" and args[1] == "node" and node is None:
        print(f'Error from server (NotFound): nodes "{args[2]}" not found', file=sys.stderr)
        return 1
    if verb == "get" and args[1] == "node":
        unschedulable = "true" if node["unschedulable"] else ""  # false is omitted
        query = args[args.index("-o") + 1].removeprefix("jsonpath=")
        text = query.replace("{.status.nodeInfo.kubeletVersion}", node["kubeletVersion"])
        text = text.replace("{.status.nodeInfo.bootID}", node["bootID"]).replace('{"|"}', "|")
        text = text.replace("{.spec.unschedulable}", unschedulable)
        text = re.sub(r"\{range [^}]*\}\{\.status\}\{end\}", node["ready"], text)
        print(text, end="")
    elif verb == "drain":
        node["unschedulable"] = True
        if state.get("drain_blocked"):
            print(
                'There are pending pods in node "w1" when an error occurred: '
                "global timeout reached: 10s\npod/web-1",
                file=sys.stderr,
            )
            print('error: unable to drain node "w1"', file=sys.stderr)
            STATE.write_text(json.dumps(state))
            return 1
        print(f"node/{args[1]} drained", file=sys.stderr)
    elif verb == "uncordon":
        node["unschedulable"] = False
    elif verb == "patch":
        data.update(json.loads(args[args.index("-p") + 1])["data"])
        state["polls"] = 0
    elif verb == "get" and args[1] == "configmap":
        state["polls"] = state.get("polls", 0) + 1
        if data.get("release") and state["polls"] >= state.get("answer_after", 1):
            if state.get("answer") == "done":
                node["kubeletVersion"] = f"v{data['release']}"
                data["state"] = "done"
            elif state.get("answer") == "failed":
                data.update(state="failed", error=state["error"])
        query = args[args.index("-o") + 1].removeprefix("jsonpath=").replace('{"|"}', "|")
        print(re.sub(r"\{\.data\.([a-z_]+)\}", lambda m: data.get(m[1], ""), query), end="")
    else:
        print(f"upgrade_kubectl: not modelled: {argv}", file=sys.stderr)
        return 2
    STATE.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
