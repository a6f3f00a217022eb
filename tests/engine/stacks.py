"""Stacks for the real engine: a stack file's settings, adapted to the lab (tests/engine/lab.py).

What the lab changes, and only that:

* ``matchbox``: the lab's Matchbox (HTTP 127.0.0.1:8080, gRPC 127.0.0.1:8081) and its
  mutual-TLS client credentials, set as secrets;
* every machine network-boots through the lab (``pxeCommand``: tests/engine/pxe_boot.py) and
  has no ``bmc`` (the lab has no BMCs);
* ``cluster.kubernetesVersion``: kept when the lab's kubeadm deploys it (:func:`lab_release`:
  its own minor or the one before, no newer than itself), else the release of that kubeadm
  (control_plane.stacks.for_built_kubeadm says why);
* ``admin.passwordHash``: a crypt(3) SHA-512 hash, set as a secret (so the state holds a
  password hash that must never show in plain text);
* ``gates``: short timeouts and a one-second poll (the lab's machines "install" in seconds);
* ``releases``: the default releases that come from the network are off; stubernetes-core
  (a chart in this repository) stays.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import ipaddress
import secrets
from pathlib import Path
from typing import Any

import yaml
from control_plane.stacks import kubeadm_version

from stackconfig.model import normalize_mac
from stackconfig.problems import ConfigError, Problem, machine_where
from stackconfig.release_digests import resolved_release
from stackconfig.releases import CORE_RELEASE

PXE_COMMAND = "python3 tests/engine/pxe_boot.py $name $mac"
# The default releases whose charts come from a Helm repository or OCI registry on the network,
# and the one (lan) whose objects need theirs.
NETWORK_RELEASES = ("openebs", "metallb", "gateway-api", "envoy-gateway", "lan", "household-dns")
LAB_GATES = {
    # Also the API server gate's: a first up that fails (see the tests) fails within it.
    "registeredTimeoutSeconds": 90,
    "readyTimeoutSeconds": 600,
    "reinstallTimeoutSeconds": 600,
    "drainTimeoutSeconds": 120,
    "pollSeconds": 1,
}
# Config paths (under the project's namespace) set as secrets, and where their values come from.
SECRET_FILES = {
    "matchbox.caCert": "ca.crt",
    "matchbox.clientCert": "client.crt",
    "matchbox.clientKey": "client.key",
}
PASSWORD_HASH = "admin.passwordHash"
# The lab's LAN when no machine has a static address to tell it (a private range, RFC 1918).
DEFAULT_LAB_SUBNET = ipaddress.IPv4Network("192.168.77.0/24")
_CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def lab_values(values: dict[str, Any], http: str, rpc: str) -> dict[str, Any]:
    """The stack's (un-namespaced) settings for the lab; secrets are set apart
    (:func:`lab_secrets`). Idempotent: adapting an adapted stack changes nothing."""
    adapted = copy.deepcopy(values)
    cluster = adapted.setdefault("cluster", {})
    cluster["kubernetesVersion"] = lab_release(str(cluster.get("kubernetesVersion") or ""))
    matchbox = adapted.setdefault("matchbox", {})
    matchbox["httpEndpoint"] = http
    matchbox["rpcEndpoint"] = rpc
    for key in ("clientCert", "clientKey", "caCert"):
        matchbox.pop(key, None)
    adapted.setdefault("admin", {}).pop("passwordHash", None)
    for machine in adapted["machines"].values():
        machine.pop("bmc", None)
        machine["pxeCommand"] = PXE_COMMAND
    adapted["gates"] = {**adapted.get("gates", {}), **LAB_GATES}
    releases = adapted.setdefault("releases", {})
    for name in NETWORK_RELEASES:
        releases[name] = {**releases.get(name, {}), "enabled": False}
    for name, release in list(releases.items()):
        if name != CORE_RELEASE and release.get("repository"):
            release["enabled"] = False
    return adapted


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def lab_release(wanted: str, built: str | None = None) -> str:
    """The stack's ``kubernetesVersion`` when the lab's kubeadm (release ``built``, by default
    the built one: control_plane.stacks.kubeadm_version) deploys it, else ``built``.

    kubeadm deploys its own minor and the one before (kubernetes
    cmd/kubeadm/app/constants/constants.go MinimumControlPlaneVersion, checked in
    cmd/kubeadm/app/util/config/common.go NormalizeKubernetesVersion), so a stack one minor
    back starts there and can be upgraded through the engine to the built release (the engine
    test's rollout). A release newer than ``built`` is not kept: the lab's control plane runs
    the built binaries whatever the manifests' image tags say (engine.lab
    start_control_plane), and its Nodes report the release their Ignition installs
    (engine.upgrade_service), so such a stack's kubelets would be newer than its API server,
    which the skew policy forbids (kubernetes.io/releases/version-skew-policy/, "kubelet").
    A kept older release is where the lab is a stand-in: its API server is still the built
    release, while the stack, its kubeadm configs, manifests' image tags and kubelets say the
    older one (a kubelet older than the API server is within the skew policy); what the lab
    shows of such a stack is the program's and the engine's part, not a real control plane of
    that release. A minor ("1.35") counts as its newest pinned patch, as the program reads it
    (stackconfig/release_digests.py resolved_release); what cannot be read is replaced."""
    built = built or kubeadm_version()
    try:
        release = resolved_release(wanted)
        key = _release_key(release)
    except ValueError:
        return built
    newest = _release_key(built)
    if len(key) == 3 and key[0] == newest[0] and newest[1] - 1 <= key[1] and key <= newest:
        return wanted
    return built


def crypt_sha512_like(rounds_salt: str | None = None) -> str:
    """A password hash of crypt(3)'s SHA-512 form, ``$6$<salt>$<86 characters>`` (random: no
    one logs in to the lab's machines; what matters is that it is a secret)."""
    salt = rounds_salt or "".join(secrets.choice(_CRYPT_ALPHABET) for _ in range(16))
    digest = "".join(secrets.choice(_CRYPT_ALPHABET) for _ in range(86))
    return f"$6${salt}${digest}"


def lab_secrets(tls_dir: Path) -> dict[str, str]:
    """Config paths and their secret values: the Matchbox client's credentials, a password hash."""
    found = {path: (tls_dir / name).read_text() for path, name in SECRET_FILES.items()}
    found[PASSWORD_HASH] = crypt_sha512_like()
    return found


def _api_host(values: dict[str, Any]) -> tuple[ipaddress.IPv4Address | None, list[Problem]]:
    """The API endpoint's host as an IPv4 address; the lab has no DNS server to resolve a name."""
    endpoint = str((values.get("cluster") or {}).get("apiEndpoint") or "")
    host, colon, _ = endpoint.rpartition(":")
    if not colon:
        host = endpoint
    try:
        return ipaddress.IPv4Address(host), []
    except ValueError:
        pass
    if not endpoint:
        why = "the engine lab needs the API endpoint, an IPv4 address and port"
    elif any(c.isalpha() for c in host):
        why = (
            f"{endpoint!r} names its host by DNS name, and the engine lab has no DNS server:"
            " give it the IPv4 address and port the name stands for (e.g. 192.168.10.11:6443)"
        )
    else:
        why = f"{endpoint!r} is not an IPv4 address and port (e.g. 192.168.10.11:6443)"
    return None, [Problem("stubernetes:cluster", "apiEndpoint", why)]


def _machines(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    machines = values.get("machines")
    return {str(k): v for k, v in machines.items() if isinstance(v, dict)} if machines else {}


def _static_addresses(
    values: dict[str, Any],
) -> tuple[dict[str, ipaddress.IPv4Interface], list[Problem]]:
    found: dict[str, ipaddress.IPv4Interface] = {}
    problems = []
    for name, machine in sorted(_machines(values).items()):
        if machine.get("address"):
            try:
                found[name] = ipaddress.IPv4Interface(str(machine["address"]))
            except ValueError:
                problems.append(
                    Problem(
                        machine_where(name),
                        "address",
                        f"{machine['address']!r} is not an IPv4 address with its prefix length"
                        " (e.g. 192.168.10.21/24)",
                    )
                )
    return found, problems


def namespace_addresses(values: dict[str, Any]) -> list[str]:
    """The addresses the lab's loopback carries: every machine's own and the API endpoint's.
    Raises ConfigError (one problem per line) for what the lab cannot carry."""
    api, problems = _api_host(values)
    static, more = _static_addresses(values)
    problems += more
    if problems:
        raise ConfigError(problems)
    assert api is not None
    return sorted({str(api), *(str(a.ip) for a in static.values())})


def lab_subnet(values: dict[str, Any]) -> ipaddress.IPv4Network:
    """The LAN the lab plays: the subnet of the machines' static addresses that holds the API
    endpoint (else the first machine's, by name), else DEFAULT_LAB_SUBNET."""
    api, _ = _api_host(values)
    static, _ = _static_addresses(values)
    networks = [address.network for address in static.values()]
    for network in networks:
        if api is not None and api in network:
            return network
    return networks[0] if networks else DEFAULT_LAB_SUBNET


def lease_addresses(values: dict[str, Any]) -> dict[str, str]:
    """What the lab's DHCP server leases each machine that has no static address: by its MAC
    (normalized), an address of lab_subnet with the subnet's prefix length. Deterministic, as a
    DHCP server that keeps its leases by MAC is: the address a hash of the MAC picks, or the
    next free one after it; never the subnet's first host (the router's), a static address, a
    gateway, a DNS server, the API endpoint or another lease. Raises ConfigError for a MAC it
    cannot read, or a subnet with no address left."""
    subnet = lab_subnet(values)
    api, _ = _api_host(values)
    static, _ = _static_addresses(values)
    taken = {address.ip for address in static.values()}
    taken.add(subnet.network_address + 1)
    if api is not None:
        taken.add(api)
    for machine in _machines(values).values():
        for value in [machine.get("gateway"), *(machine.get("dns") or [])]:
            with contextlib.suppress(ValueError):
                taken.add(ipaddress.IPv4Address(str(value)))
    first = int(subnet.network_address) + 1
    count = max(subnet.num_addresses - 2, 0)
    problems = []
    leases: dict[str, str] = {}
    dhcp = [
        (name, machine) for name, machine in _machines(values).items() if not machine.get("address")
    ]
    by_mac = []
    for name, machine in sorted(dhcp):
        try:
            by_mac.append((normalize_mac(str(machine.get("mac"))), name))
        except ValueError as error:
            problems.append(Problem(machine_where(name), "mac", str(error)))
    for mac, name in sorted(by_mac):
        start = int.from_bytes(hashlib.sha256(mac.encode()).digest()[:8], "big")
        for step in range(count):
            candidate = ipaddress.IPv4Address(first + (start + step) % count)
            if candidate not in taken:
                taken.add(candidate)
                leases[mac] = f"{candidate}/{subnet.prefixlen}"
                break
        else:
            problems.append(
                Problem(
                    machine_where(name),
                    "address",
                    f"has none, and the lab's subnet {subnet} has no address left to lease it",
                )
            )
    if problems:
        raise ConfigError(problems)
    return leases


def read_stack_file(path: Path) -> dict[str, Any]:
    """A stack file's settings, un-namespaced (``secure:`` values stay as they are written;
    :func:`lab_values` replaces every one the lab sets)."""
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == "stubernetes" and name:
            values[name] = copy.deepcopy(value)
    return values


def write_stack_file(path: Path, values: dict[str, Any]) -> None:
    config = {f"stubernetes:{key}": value for key, value in values.items()}
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))


def unresolved_secure_values(values: Any, where: str = "") -> list[str]:
    """Paths of ``secure:`` values the lab cannot decrypt (a stack file's placeholders)."""
    if isinstance(values, dict):
        if set(values) == {"secure"}:
            return [where]
        return [p for k, v in values.items() for p in unresolved_secure_values(v, f"{where}.{k}")]
    if isinstance(values, list):
        return [
            p for i, v in enumerate(values) for p in unresolved_secure_values(v, f"{where}[{i}]")
        ]
    return []


def mock_registrations(values: dict[str, Any]) -> set[tuple[str, str]]:
    """``(type, name)`` of every resource the program registers for ``values`` under the SDK's
    mocks, as the mocks tests run it (stubernetes.program_run), a new stack's."""
    from stubernetes.program_run import run_program

    run = run_program(values, ["matchbox", "admin"])
    return {(r.type, r.name) for r in run.registrations}
