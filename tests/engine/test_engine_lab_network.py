"""The engine lab's network for a stack as an operator writes it: machines without a static
address get a DHCP lease, and what the lab cannot play is refused in one line.

A machine that has no `address` in its stack takes one from the LAN's DHCP server, and kubeadm
then takes a controller's advertise address from the default route DHCP set up
(k8s.io/apimachinery pkg/util/net/interface.go ChooseHostInterface). The lab
(tests/engine/lab.py) is that DHCP server: engine.stacks.lease_addresses picks each lease, the
lab puts it on a device of its own, and the machine's root gets its /proc/net/route.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.kubeadm import kubeadm
from control_plane.stacks import for_built_kubeadm
from cryptography import x509
from repo_paths import REPO

from engine.lab import ROUTE_HEADER, LabHandle, Lease, lease_route_file, start_lab
from engine.stacks import (
    DEFAULT_LAB_SUBNET,
    lab_subnet,
    lease_addresses,
    namespace_addresses,
    write_stack_file,
)
from stackconfig.model import normalize_mac
from stackconfig.problems import ConfigError


def _ip(lease: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Interface(lease).ip


def _taken(values: dict[str, Any]) -> set[ipaddress.IPv4Address]:
    taken = {ipaddress.IPv4Address(values["cluster"]["apiEndpoint"].rpartition(":")[0])}
    for machine in values["machines"].values():
        if machine.get("address"):
            taken.add(ipaddress.IPv4Interface(machine["address"]).ip)
        for other in [machine.get("gateway"), *(machine.get("dns") or [])]:
            if other:
                taken.add(ipaddress.IPv4Address(other))
    return taken


def dhcp_controller(values: dict[str, Any], name: str = "c2") -> dict[str, Any]:
    """The example plus a joining controller without a static address, the API endpoint moved
    to an address of its own (a controller's own address would not do with two of them)."""
    changed = copy.deepcopy(values)
    changed["machines"][name] = {
        "mac": "52-54-00-A1-00-C2",
        "role": "controller",
        "installDisk": "/dev/sda",
    }
    changed["cluster"]["apiEndpoint"] = "192.168.10.5:6443"
    return changed


def test_a_machine_without_an_address_gets_a_lease_of_the_lans_subnet(
    example_values: dict[str, Any],
) -> None:
    values = dhcp_controller(example_values)
    leases = lease_addresses(values)
    # Keyed by the MAC as the machine boots with it (stackconfig's normalized form).
    dhcp = {normalize_mac(m["mac"]) for m in values["machines"].values() if not m.get("address")}
    assert set(leases) == dhcp and len(dhcp) == 2
    subnet = lab_subnet(values)
    assert subnet == ipaddress.IPv4Interface(values["machines"]["c1"]["address"]).network
    addresses = [_ip(lease) for lease in leases.values()]
    assert all(ipaddress.IPv4Interface(lease).network == subnet for lease in leases.values())
    assert len(set(addresses)) == len(addresses)
    # Never a static address, a gateway, a DNS server, the API endpoint, the router.
    assert not set(addresses) & (_taken(values) | {subnet.network_address + 1})
    assert all(a not in (subnet.network_address, subnet.broadcast_address) for a in addresses)


def test_a_lease_stays_the_machines_as_the_stack_grows(example_values: dict[str, Any]) -> None:
    # A DHCP server keeps a MAC's lease: adding machines leaves the earlier leases alone.
    values = dhcp_controller(example_values)
    before = lease_addresses(values)
    assert lease_addresses(copy.deepcopy(values)) == before
    grown = copy.deepcopy(values)
    for index in range(20):
        grown["machines"][f"x{index}"] = {
            "mac": f"52:54:00:b0:00:{index:02x}",
            "role": "worker",
            "installDisk": "/dev/sda",
        }
    after = lease_addresses(grown)
    assert {mac: after[mac] for mac in before} == before
    assert len(set(after.values())) == len(after) == len(before) + 20


def test_a_stack_without_static_addresses_leases_from_the_labs_own_subnet(
    example_values: dict[str, Any],
) -> None:
    values = copy.deepcopy(example_values)
    for machine in values["machines"].values():
        for key in ("address", "gateway", "dns"):
            machine.pop(key, None)
    values["cluster"]["apiEndpoint"] = "10.9.8.7:6443"
    leases = lease_addresses(values)
    assert len(leases) == len(values["machines"])
    assert all(
        ipaddress.IPv4Interface(lease).network == DEFAULT_LAB_SUBNET for lease in leases.values()
    )


def test_a_subnet_with_no_address_left_is_a_problem_naming_the_machine(
    example_values: dict[str, Any],
) -> None:
    values = copy.deepcopy(example_values)
    values["cluster"]["apiEndpoint"] = "192.168.10.10:6443"
    for machine in values["machines"].values():
        machine.pop("gateway", None)
        machine.pop("dns", None)
    # A /30: .9 the router, .10 the endpoint (c1's own address), nothing left for w2.
    values["machines"]["c1"]["address"] = "192.168.10.10/30"
    values["machines"]["w1"]["address"] = "192.168.10.10/30"
    with pytest.raises(ConfigError) as caught:
        lease_addresses(values)
    assert [str(p) for p in caught.value.problems] == [
        "machine 'w2': field 'address': has none, and the lab's subnet 192.168.10.8/30 has no"
        " address left to lease it"
    ]


def test_the_route_file_is_the_kernels_and_reads_as_kubeadm_reads_it() -> None:
    lease = Lease("192.168.10.33", "lease1", "192.168.10.1")
    text = lease_route_file(lease)
    header, row, end = text.split("\n")
    # The kernel pads its lines with spaces; the columns are the same as this host's.
    assert header == Path("/proc/net/route").read_text().splitlines()[0].rstrip() == ROUTE_HEADER
    assert end == ""
    fields = row.split("\t")
    assert len(fields) == len([c for c in header.split("\t") if c])
    # apimachinery interface.go getIPv4DefaultRoutes: fields 0-2, each address four bytes of
    # hex in reverse order (parseIP); a default route has destination 0.0.0.0.
    interface, destination, gateway = fields[:3]
    assert interface == lease.device
    assert bytes.fromhex(destination) == bytes(4)
    assert str(ipaddress.IPv4Address(bytes(reversed(bytes.fromhex(gateway))))) == lease.gateway
    assert int(fields[3], 16) & 0x1  # RTF_UP


# ----------------------------------------------------------------- the by-hand command


def by_hand(stack_file: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engine",
            "--stack-file",
            str(stack_file),
            "--work",
            str(work),
            "up",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_by_hand_command_refuses_a_dns_api_endpoint_in_one_line(
    tmp_path: Path, example_values: dict[str, Any]
) -> None:
    values = copy.deepcopy(example_values)
    values["cluster"]["apiEndpoint"] = "k8s.lab.home.arpa:6443"
    stack_file = tmp_path / "Pulumi.dns.yaml"
    write_stack_file(stack_file, values)
    done = by_hand(stack_file, tmp_path / "work")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: {stack_file}: stubernetes:cluster: field 'apiEndpoint':"
        " 'k8s.lab.home.arpa:6443' names its host by DNS name, and the engine lab has no DNS"
        " server: give it the IPv4 address and port the name stands for (e.g."
        " 192.168.10.11:6443)"
    ]
    assert done.stdout == ""
    assert not (tmp_path / "work" / "lab.json").exists()  # no lab was started


def test_the_by_hand_command_names_every_address_it_cannot_carry(
    tmp_path: Path, example_values: dict[str, Any]
) -> None:
    values = copy.deepcopy(example_values)
    values["cluster"]["apiEndpoint"] = "lab-api:6443"
    values["machines"]["w1"]["address"] = "192.168.10.300/24"
    stack_file = tmp_path / "Pulumi.bad.yaml"
    write_stack_file(stack_file, values)
    done = by_hand(stack_file, tmp_path / "work")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr
    assert "field 'apiEndpoint': 'lab-api:6443' names its host by DNS name" in lines[0]
    assert lines[1].endswith(
        "machine 'w1': field 'address': '192.168.10.300/24' is not an IPv4 address with its"
        " prefix length (e.g. 192.168.10.21/24)"
    )
    with pytest.raises(ConfigError):
        namespace_addresses(values)


def test_the_by_hand_command_says_which_stack_file_it_cannot_read(tmp_path: Path) -> None:
    done = by_hand(tmp_path / "Pulumi.none.yaml", tmp_path / "work")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path / 'Pulumi.none.yaml'}: ") and "No such file" in line


# ------------------------------------------------------------- the lab's DHCP, for real


@pytest.fixture
def lab(
    tmp_path: Path, example_values: dict[str, Any]
) -> Iterator[tuple[LabHandle, dict[str, Any]]]:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("the lab needs root, unshare and nsenter (a network namespace)")
    values = dhcp_controller(for_built_kubeadm(example_values))
    handle = start_lab(tmp_path / "lab", namespace_addresses(values))
    try:
        yield handle, values
    finally:
        handle.stop()


def _in_lab(lab: LabHandle, *argv: str) -> str:
    done = subprocess.run(lab.wrap(list(argv)), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.real
def test_kubeadm_takes_a_controllers_lease_as_its_advertise_address(
    lab: tuple[LabHandle, dict[str, Any]], tmp_path: Path
) -> None:
    """A controller's kubeadm config without an advertise address: in the lab without a lease,
    kubeadm finds no address (the failure a joining DHCP controller met, 125 times, until its
    gate gave up); with the leases, each machine's root routes through its own device, and
    kubeadm takes that device's address (here in the API server's certificate, which `init
    phase certs apiserver` signs for the advertise address)."""
    handle, values = lab
    root = tmp_path / "root"
    config = root / "etc" / "kubeadm.yaml"
    config.parent.mkdir(parents=True)
    version = f"v{values['cluster']['kubernetesVersion']}"
    config.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "kubeadm.k8s.io/v1beta4",
                    "kind": "InitConfiguration",
                    "nodeRegistration": {"name": "c2"},
                },
                {
                    "apiVersion": "kubeadm.k8s.io/v1beta4",
                    "kind": "ClusterConfiguration",
                    "kubernetesVersion": version,
                    "controlPlaneEndpoint": "192.168.10.5:6443",
                },
            ]
        )
    )
    args = ["--config=/etc/kubeadm.yaml"]
    refused = kubeadm(
        ["init", "phase", "certs", "ca", *args], rootfs=root, wrap=handle.wrap, check=False
    )
    assert refused.returncode != 0
    assert "no acceptable interface with global unicast address found on host" in refused.stderr

    leases = lease_addresses(values)
    given = handle.lease(leases)
    assert {mac: lease["address"] for mac, lease in given.items()} == {
        mac: str(_ip(spec)) for mac, spec in leases.items()
    }
    # The same leases again change nothing; another address for a leased MAC is refused.
    assert handle.lease(leases) == given
    mac = sorted(leases)[0]
    with pytest.raises(RuntimeError, match="has the lease"):
        handle.lease({mac: "192.168.10.250/24"})
    for lease in given.values():
        shown = _in_lab(handle, "ip", "-o", "-4", "address", "show", "dev", lease["device"])
        assert f"inet {lease['address']}/32" in shown
    # c2's own lease, on a device that is not the first of them.
    mine = given[normalize_mac(values["machines"]["c2"]["mac"])]
    assert mine["device"] != "lease0"
    route = root / "proc" / "net" / "route"
    route.parent.mkdir(parents=True)
    route.write_text(lease_route_file(Lease(mine["address"], mine["device"], mine["router"])))
    for phase in ("ca", "apiserver"):
        kubeadm(["init", "phase", "certs", phase, *args], rootfs=root, wrap=handle.wrap)
    certificate = x509.load_pem_x509_certificate(
        (root / "etc" / "kubernetes" / "pki" / "apiserver.crt").read_bytes()
    )
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.IPv4Address(mine["address"]) in names.get_values_for_type(x509.IPAddress)
    assert json.dumps(handle.status()["leases"], sort_keys=True) == json.dumps(
        {m: lease["address"] for m, lease in given.items()}, sort_keys=True
    )
