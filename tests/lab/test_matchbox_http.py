"""The Matchbox HTTP stand-in against Matchbox's documented semantics.

The data below is shaped like Matchbox's own examples (examples/profiles/*.json,
examples/groups/*/*.json, docs/matchbox.md): a default group without a selector that
every machine falls into, a MAC-specific group, a group selecting on another label.
These tests are fast and need no QEMU, so they carry no ``lab`` marker.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .matchbox_http import (
    BOOT_IPXE,
    Group,
    MatchboxHTTP,
    order_groups,
    parse_mac,
    request_labels,
)

NODE1_MAC = "52:54:00:89:d8:10"

INSTALL_PROFILE = {
    "id": "fedora-coreos-install",
    "name": "Fedora CoreOS install to disk",
    "boot": {
        "kernel": "/assets/fedora-coreos/fedora-coreos-36.20220618.3.1-live-kernel-x86_64",
        "initrd": [
            "--name main /assets/fedora-coreos/"
            "fedora-coreos-36.20220618.3.1-live-initramfs.x86_64.img",
        ],
        "args": [
            "initrd=main",
            "coreos.live.rootfs_url=http://matchbox.example.com:8080/assets/fedora-coreos/"
            "fedora-coreos-36.20220618.3.1-live-rootfs.x86_64.img",
            "coreos.inst.install_dev=/dev/sda",
            "coreos.inst.ignition_url=http://matchbox.example.com:8080/ignition"
            "?uuid=${uuid}&mac=${mac:hexhyp}",
            "console=tty0",
            "console=ttyS0",
        ],
    },
    "ignition_id": "fedora-coreos.ign",
}
NODE1_PROFILE = {
    "id": "node1-profile",
    "name": "node1",
    "boot": {
        "kernel": "/assets/fedora-coreos/kernel",
        "initrd": ["/assets/fedora-coreos/initramfs.img", "/assets/fedora-coreos/rootfs.img"],
        "args": ["coreos.inst.install_dev=/dev/vda", "console=ttyS0"],
    },
    "ignition_id": "node1.ign",
}
INSTALLED_PROFILE = {
    "id": "flatcar",
    "name": "Flatcar Linux",
    "boot": {"kernel": "/assets/flatcar/flatcar_production_pxe.vmlinuz", "args": []},
    "ignition_id": "flatcar.ign",
}
GROUPS: dict[str, dict[str, Any]] = {
    # examples/groups/fedora-coreos-install/default.json: no selector, matches everyone
    "default": {"id": "default", "name": "Fedora CoreOS install", "profile": INSTALL_PROFILE["id"]},
    # docs/matchbox.md: a machine-specific group
    "node1": {
        "id": "node1",
        "name": "Node 1",
        "profile": NODE1_PROFILE["id"],
        "selector": {"mac": "52-54-00-89-D8-10"},  # normalised when loaded
        "metadata": {"node_name": "node1"},
    },
    # examples/groups/flatcar-install/flatcar.json: another label
    "stage-1": {
        "id": "stage-1",
        "name": "Flatcar Linux",
        "profile": INSTALLED_PROFILE["id"],
        "selector": {"os": "installed"},
        "metadata": {},
    },
}
IGNITION = {
    "fedora-coreos.ign": {"ignition": {"version": "3.3.0"}, "storage": {"files": []}},
    "node1.ign": {
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [{"path": "/etc/hostname", "contents": {"source": "data:,node1"}}]},
    },
    "flatcar.ign": {"ignition": {"version": "3.3.0"}},
}


def write_data(root: Path, groups: dict[str, dict[str, Any]] | None = None) -> Path:
    data = root / "data"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    for profile in (INSTALL_PROFILE, NODE1_PROFILE, INSTALLED_PROFILE):
        (data / "profiles" / f"{profile['id']}.json").write_text(json.dumps(profile))
    for gid, group in (GROUPS if groups is None else groups).items():
        (data / "groups" / f"{gid}.json").write_text(json.dumps(group))
    for name, doc in IGNITION.items():
        # keep the exact bytes, with a trailing newline, to check they are served raw
        (data / "ignition" / name).write_text(json.dumps(doc, indent=1) + "\n")
    return data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MatchboxHTTP]:
    assets = tmp_path / "assets"
    (assets / "fedora-coreos").mkdir(parents=True)
    (assets / "fedora-coreos" / "kernel").write_bytes(b"KERNEL")
    with MatchboxHTTP(write_data(tmp_path), assets) as srv:
        yield srv


def get(srv: MatchboxHTTP, target: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(srv.url + target, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def rendered(profile: dict[str, Any]) -> str:
    boot = profile["boot"]
    lines = ["#!ipxe", " ".join(["kernel", boot["kernel"], *boot["args"]])]
    lines += [f"initrd {i}" for i in boot.get("initrd", [])]
    return "\n".join([*lines, "boot", ""])


# ----------------------------------------------------------------------- MAC parsing


@pytest.mark.parametrize(
    "text",
    [
        "52:54:00:89:d8:10",
        "52:54:00:89:D8:10",
        "52-54-00-89-d8-10",
        "52-54-00-89-D8-10",
        "5254.0089.d810",
        "5254.0089.D810",
    ],
)
def test_parse_mac_accepts_go_forms(text: str) -> None:
    assert parse_mac(text) == NODE1_MAC


def test_parse_mac_longer_addresses() -> None:
    assert parse_mac("02:00:5e:10:00:00:00:01") == "02:00:5e:10:00:00:00:01"
    twenty = ":".join(["00"] * 19 + ["ff"])
    assert parse_mac(twenty.replace(":", "-")) == twenty


@pytest.mark.parametrize(
    "text",
    [
        "not-a-mac",
        "52:54:00:89:d8",  # too short
        "52:54:00:89:d8:10:",  # trailing separator
        "52:54-00:89:d8:10",  # mixed separators
        "52:54:00:89:d8:1g",  # not hex
        "525400.89d810",
        "5254.0089-d810",
        "525400:89d810",
        "52:54:00:89:d8:10:aa",  # 7 octets
        "",
    ],
)
def test_parse_mac_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mac(text)


@given(st.binary(min_size=6, max_size=6), st.booleans())
def test_parse_mac_forms_agree(raw: bytes, upper: bool) -> None:
    hexes = [f"{b:02x}" for b in raw]
    if upper:
        hexes = [h.upper() for h in hexes]
    colon = ":".join(hexes)
    dotted = ".".join("".join(hexes[i : i + 2]) for i in range(0, 6, 2))
    expected = ":".join(f"{b:02x}" for b in raw)
    assert parse_mac(colon) == parse_mac(colon.replace(":", "-")) == parse_mac(dotted)
    assert parse_mac(colon) == expected


def test_request_labels_normalise_and_drop_bad_mac() -> None:
    assert request_labels("mac=52-54-00-89-D8-10&uuid=u&os=installed") == {
        "mac": NODE1_MAC,
        "uuid": "u",
        "os": "installed",
    }
    assert request_labels("mac=zz&uuid=u") == {"uuid": "u"}
    assert request_labels("MAC=5254.0089.d810") == {"MAC": NODE1_MAC}
    assert request_labels("a=1&a=2") == {"a": "1"}  # first value wins
    assert request_labels("domain=&hostname=") == {"domain": "", "hostname": ""}


# ---------------------------------------------------------------- group ordering


def g(gid: str, **selector: str) -> Group:
    return Group(gid, gid, "p", dict(selector), {})


def test_groups_with_more_selectors_are_tried_first() -> None:
    order = order_groups([g("a"), g("b", mac=NODE1_MAC), g("c", mac=NODE1_MAC, uuid="u")])
    assert [x.id for x in order] == ["c", "b", "a"]


def test_equal_selector_counts_are_tried_in_reverse_selector_string_order() -> None:
    # Matchbox sorts by the sorted "key=value" string and reverses the whole order.
    order = order_groups([g("z-mac", mac=NODE1_MAC), g("a-uuid", uuid="u"), g("m-os", os="x")])
    assert [x.id for x in order] == ["a-uuid", "m-os", "z-mac"]


def test_identical_selectors_fall_back_to_group_id() -> None:
    order = order_groups([g("b", os="x"), g("a", os="x")])
    assert [x.id for x in order] == ["a", "b"]


# ------------------------------------------------------------------------- HTTP API


def test_boot_ipxe_chains_with_machine_variables(server: MatchboxHTTP) -> None:
    status, body = get(server, "/boot.ipxe")
    assert status == 200
    assert body.decode() == BOOT_IPXE
    assert body.decode().splitlines() == [
        "#!ipxe",
        "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}"
        "&hostname=${hostname}&serial=${serial}",
    ]
    assert get(server, "/boot.ipxe.0") == (200, body)


def test_mac_group_beats_default_group(server: MatchboxHTTP) -> None:
    for mac in ("52-54-00-89-d8-10", "52:54:00:89:D8:10", "5254.0089.d810"):
        status, body = get(server, f"/ipxe?uuid=u1&mac={mac}&domain=&hostname=&serial=")
        assert (status, body.decode()) == (200, rendered(NODE1_PROFILE)), mac


def test_unknown_mac_falls_into_default_group(server: MatchboxHTTP) -> None:
    status, body = get(server, "/ipxe?uuid=u2&mac=52-54-00-00-00-02")
    assert (status, body.decode()) == (200, rendered(INSTALL_PROFILE))
    # args are rendered verbatim, iPXE variables included, one initrd line each
    text = body.decode()
    assert (
        "coreos.inst.ignition_url=http://matchbox.example.com:8080/ignition?uuid=${uuid}&mac=${mac:hexhyp}"
        in text
    )
    assert text.splitlines()[2].startswith("initrd --name main /assets/")


def test_other_label_group(server: MatchboxHTTP) -> None:
    status, body = get(server, "/ipxe?os=installed&mac=52-54-00-00-00-02")
    assert (status, body.decode()) == (200, rendered(INSTALLED_PROFILE))
    assert body.decode() == (
        "#!ipxe\nkernel /assets/flatcar/flatcar_production_pxe.vmlinuz\nboot\n"
    )


def test_no_matching_group_is_404(tmp_path: Path) -> None:
    groups = {k: v for k, v in GROUPS.items() if k != "default"}
    with MatchboxHTTP(write_data(tmp_path, groups)) as srv:
        assert get(srv, "/ipxe?mac=52-54-00-00-00-02")[0] == 404
        assert get(srv, "/ignition?mac=52-54-00-00-00-02")[0] == 404
        assert get(srv, "/ipxe?mac=not-a-mac")[0] == 404  # dropped label: nothing matches
        assert get(srv, "/ipxe")[0] == 404
        assert get(srv, f"/ipxe?mac={NODE1_MAC}")[0] == 200
        statuses = [(r.path, r.status) for r in srv.requests]
        assert statuses == [
            ("/ipxe", 404),
            ("/ignition", 404),
            ("/ipxe", 404),
            ("/ipxe", 404),
            ("/ipxe", 200),
        ]


def test_group_with_missing_profile_is_404(tmp_path: Path) -> None:
    groups = {"only": {"id": "only", "profile": "no-such-profile", "selector": {}}}
    with MatchboxHTTP(write_data(tmp_path, groups)) as srv:
        assert get(srv, "/ipxe?mac=52-54-00-00-00-02")[0] == 404
        assert get(srv, "/ignition?mac=52-54-00-00-00-02")[0] == 404


def test_group_with_unparseable_mac_selector_is_skipped(tmp_path: Path) -> None:
    groups = {
        "broken": {"id": "broken", "profile": NODE1_PROFILE["id"], "selector": {"mac": "nope"}},
        "default": GROUPS["default"],
    }
    with MatchboxHTTP(write_data(tmp_path, groups)) as srv:
        status, body = get(srv, "/ipxe?mac=52-54-00-89-d8-10")
        assert (status, body.decode()) == (200, rendered(INSTALL_PROFILE))


def test_ignition_is_served_raw_for_the_matched_group(server: MatchboxHTTP, tmp_path: Path) -> None:
    ign_dir = tmp_path / "data" / "ignition"
    status, body = get(server, "/ignition?uuid=u1&mac=52-54-00-89-d8-10")
    assert (status, body) == (200, (ign_dir / "node1.ign").read_bytes())
    status, body = get(server, "/ignition?uuid=u2&mac=52-54-00-00-00-02")
    assert (status, body) == (200, (ign_dir / "fedora-coreos.ign").read_bytes())


def test_templated_ignition_is_not_implemented(tmp_path: Path) -> None:
    data = write_data(tmp_path, {"default": GROUPS["default"]})
    profile = dict(INSTALL_PROFILE, ignition_id="fedora-coreos.yaml")
    (data / "profiles" / "fedora-coreos-install.json").write_text(json.dumps(profile))
    with MatchboxHTTP(data) as srv:
        assert get(srv, "/ignition?mac=52-54-00-00-00-02")[0] == 501


def test_assets_are_static_and_confined(server: MatchboxHTTP) -> None:
    assert get(server, "/assets/fedora-coreos/kernel") == (200, b"KERNEL")
    assert get(server, "/assets/fedora-coreos/missing")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/assets/../data/groups/node1.json")
        assert conn.getresponse().status == 404
    finally:
        conn.close()
    assert get(server, "/nope")[0] == 404


def test_every_request_is_recorded(server: MatchboxHTTP, tmp_path: Path) -> None:
    get(server, "/boot.ipxe")
    get(server, "/ipxe?uuid=u1&mac=52-54-00-89-d8-10&domain=d&hostname=h&serial=s")
    get(server, "/ignition?uuid=u1&mac=52-54-00-89-d8-10")
    get(server, "/assets/fedora-coreos/missing")
    reqs = server.requests
    assert [r.target for r in reqs] == [
        "/boot.ipxe",
        "/ipxe?uuid=u1&mac=52-54-00-89-d8-10&domain=d&hostname=h&serial=s",
        "/ignition?uuid=u1&mac=52-54-00-89-d8-10",
        "/assets/fedora-coreos/missing",
    ]
    assert [r.status for r in reqs] == [200, 200, 200, 404]
    assert reqs[1].params["mac"] == ["52-54-00-89-d8-10"]
    assert reqs[1].labels["mac"] == NODE1_MAC
    node1 = (tmp_path / "data" / "ignition" / "node1.ign").read_bytes()
    assert reqs[2].body_sha256 == hashlib.sha256(node1).hexdigest()
    assert reqs[3].body_sha256 is None
    assert [r.target for r in server.requests_for("/ignition")] == [reqs[2].target]
    server.clear_requests()
    assert server.requests == []


def test_data_dir_is_read_per_request(tmp_path: Path) -> None:
    data = tmp_path / "late"
    with MatchboxHTTP(data) as srv:
        assert get(srv, "/ipxe?mac=52-54-00-89-d8-10")[0] == 404
        srv.data_dir = write_data(tmp_path)
        assert get(srv, "/ipxe?mac=52-54-00-89-d8-10")[0] == 200
