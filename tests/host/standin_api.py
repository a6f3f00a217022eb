"""Stand-in clients of the API server: `kubectl get node` and curl's `GET /version`.

A stand-in (the cluster they ask is the simulated one, sim/cluster.state). What it follows:
- `kubectl --kubeconfig FILE get node NAME -o jsonpath={.metadata.labels}` prints the Node's
  labels as a JSON map; a missing Node is "Error from server (NotFound): nodes "NAME" not
  found", an API server that does not answer "The connection to the server HOST:PORT was
  refused - did you specify the right host or port?" (kubectl's own messages; k8s.io/kubectl
  v0.36.3 pkg/cmd/util/helpers.go).
- `curl --cacert CA https://HOST:PORT/version` answers the API server's version info where
  an API server of this cluster serves HOST:PORT, "(7) Failed to connect" where none does,
  and "(60) SSL certificate problem" where one of another CA does (curl's exit codes,
  curl(1) "EXIT CODES"). At the API endpoint answers whoever holds it (`api_host`); at a
  peer controller's own address, that controller's API server while its etcd member and
  kubelet run.
"""

from __future__ import annotations

from standin_call import Call, err, exists, option, out, unmodeled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from standin_call import JSON


def kubectl(call: Call) -> int:
    args = call.args
    kubeconfig = option(args, "--kubeconfig")
    output = option(args, "-o")
    words = [a for a in args if not a.startswith("-") and a not in (kubeconfig, output)]
    if words[:2] != ["get", "node"] or len(words) != 3 or output != "jsonpath={.metadata.labels}":
        return unmodeled(call)
    if kubeconfig is None or not exists(kubeconfig):
        err(f"error: stat {kubeconfig}: no such file or directory")
        return 1
    if call.fault.get("do") == "unreachable" or not call.api_up():
        endpoint = call.facts["endpoint"]
        err(
            f"The connection to the server {endpoint} was refused - "
            "did you specify the right host or port?"
        )
        return 1
    node = call.cluster["nodes"].get(words[2])
    if node is None:
        err(f'Error from server (NotFound): nodes "{words[2]}" not found')
        return 1
    # As `-o jsonpath` prints a map: compact JSON (label keys and values need no escaping).
    labels = node["labels"]
    out("{" + ",".join(f'"{k}":"{labels[k]}"' for k in sorted(labels)) + "}")
    return 0


def peer_answers(call: Call, endpoint: str) -> bool:
    """Whether another controller's own API server runs at host:port: its etcd member is there
    and started, and its kubelet runs."""
    host = endpoint.rpartition(":")[0]
    member = call.cluster["etcd"].get(f"https://{host}:2380")
    if not call.cluster.get("initialized") or not member or not member["started"]:
        return False
    node: JSON | None = call.cluster["nodes"].get(member["name"])
    return (
        member["name"] != call.facts["node_name"]
        and node is not None
        and node.get("kubelet") == "running"
    )


def curl(call: Call) -> int:
    """`curl --cacert CA https://<host:port>/version`: who answers at the API endpoint, or at
    a peer controller's own address."""
    url = call.args[-1]
    endpoint = url.removeprefix("https://").removesuffix("/version")
    peers = call.facts["peer_endpoints"]
    if url != f"https://{endpoint}/version" or "--cacert" not in call.args:
        return unmodeled(call)
    cluster = call.cluster
    if endpoint == call.facts["endpoint"]:
        answers = (
            cluster.get("initialized")
            and cluster.get("api") == "up"
            # This machine was just wiped: its own API server does not run.
            and cluster.get("api_host") != call.facts["node_name"]
        )
    elif endpoint in peers:
        answers = peer_answers(call, endpoint)
    else:
        return unmodeled(call)
    if not answers:
        err(f"curl: (7) Failed to connect to {endpoint}: Connection refused")
        return 7
    if cluster.get("ca_hash") != call.facts["ca_hash"]:
        err("curl: (60) SSL certificate problem: unable to get local issuer certificate")
        return 60
    version = call.facts["kubernetes_version"]
    minor = version.split(".")[1]
    out(f'{{"major": "1", "minor": "{minor}", "gitVersion": "{version}"}}')
    return 0
