"""The virtual bare-metal lab: real firmware PXE -> iPXE -> real Matchbox -> kernel -> Ignition.

Each machine of the served Matchbox data (see ``lab_data_dir`` in conftest.py) boots as
a QEMU guest (TCG) with its own MAC, from the real Matchbox v0.11.0 serving that data as
its ``-data-path``. SeaBIOS' iPXE ROM takes the DHCP bootfile ``/boot.ipxe``, chains to
``/ipxe`` with its variables, loads the kernel and initrd the matched profile names (a
Debian kernel and the lab initramfs, put at the profile's asset paths) with the profile's
args, and the lab init hands the Ignition URL from the command line to the real Ignition
v2.24.0, which fetches the config by MAC (Matchbox serves it as spec 3.4.0) and applies it
to a scratch /sysroot, downloading the node's binaries from Matchbox's /assets/ and checking
each one's sha256 (served_binaries.py). The guest reports on the serial console and powers
off.

What each machine asked Matchbox comes from Matchbox's own log (``matchbox_log.py``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from matchbox_grpc import IgnitionOnMatchbox, Matchbox, start_matchbox
from real_process import free_port
from tool_cache import require_tool

from . import qemu_vm
from .host_apply import apply_and_digest, can_apply_on_host, manifest_entries, reached_from_host
from .lab_env import (
    RUNNING_MATCHBOXES,
    Lab,
    LabMachine,
    machines_in,
    skip_or_fail,
    stage_assets,
)
from .matchbox_log import LoggedRequest, MatchboxLog

pytestmark = pytest.mark.lab

UNKNOWN_MAC = "52:54:00:a1:00:99"
# iPXE's ${buildarch} in the BIOS build of Debian's ipxe-qemu ROMs that SeaBIOS runs.
IPXE_BUILDARCH = "i386"
FLATCAR_MAC = "52:54:00:a1:00:03"


def describe_requests(requests: list[LoggedRequest]) -> str:
    return "\n".join(
        f"  {r.status or '-'} {r.method} {r.target}  {r.selection.get('msg', '')}" for r in requests
    )


@dataclass
class MachineBoot:
    machine: LabMachine
    result: qemu_vm.BootResult
    requests: list[LoggedRequest]

    def fail_context(self) -> str:
        return (
            f"{self.result.describe()}\nrequests in Matchbox's log:\n"
            f"{describe_requests(self.requests)}"
        )

    def assert_completed(self) -> None:
        r = self.result
        problems = []
        if r.timed_out:
            problems.append(f"no power-off within {r.seconds:.0f}s")
        if "error" in r.report:
            problems.append(f"guest error: {r.report['error']}")
        if "end" not in r.report:
            problems.append("guest report incomplete (no '@@LAB end')")
        assert not problems, "; ".join(problems) + "\n" + self.fail_context()

    def paths(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]


def boot_machine(
    lab: Lab, vm: qemu_vm.Machine, timeout: float
) -> tuple[qemu_vm.BootResult, list[LoggedRequest]]:
    mark = lab.log.mark()
    result = qemu_vm.boot(vm, lab.boot_url, lab.workdir, timeout=timeout)
    lab.boot_times.add(result)
    return result, lab.log.since(mark)


def fetch(server: Matchbox, target: str) -> tuple[int, bytes]:
    """Ask Matchbox (on 127.0.0.1) for ``target`` (path and query) as a machine would."""
    try:
        with urllib.request.urlopen(server.http_url + target, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# Ignition's fetch stage logs the digest of a config it fetched through a reference
# (coreos/ignition v2.24.0 `internal/exec/config_fetcher.go`); the lab's local config
# replaces itself with the Matchbox URL (`guest/init`).
_FETCHED = re.compile(r"fetched referenced config at (\S+) with SHA512: ([0-9a-f]{128})")


@pytest.fixture(scope="module")
def boots(lab: Lab) -> dict[str, MachineBoot]:
    """Boot every machine once, one after the other."""
    out = {}
    for m in lab.machines:
        result, requests = boot_machine(lab, m.vm(), lab.boot_timeout)
        out[m.name] = MachineBoot(m, result, requests)
    return out


_IPXE_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)(?::([A-Za-z0-9_-]+))?\}")


def expand_ipxe(text: str, vm: qemu_vm.Machine) -> str:
    """Expand the iPXE settings the lab provides, as iPXE formats them."""

    def repl(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2)
        if name == "mac":
            return vm.mac.replace(":", "-") if kind == "hexhyp" else vm.mac
        values = {
            "uuid": vm.uuid,
            "hostname": vm.hostname,
            "domain": vm.domain,
            "serial": vm.serial,
        }
        if name not in values:
            raise KeyError(f"the lab does not model iPXE setting ${{{name}}}")
        return values[name]

    return _IPXE_VAR.sub(repl, text)


@pytest.fixture(scope="module")
def translation() -> IgnitionOnMatchbox:
    return IgnitionOnMatchbox.for_matchbox(require_tool("matchbox", "matchbox"))


def test_each_machine_fetches_its_own_ignition(
    boots: dict[str, MachineBoot], lab: Lab, translation: IgnitionOnMatchbox, record_property: Any
) -> None:
    """Matchbox selects the machine's own group by its MAC and serves that profile's Ignition
    (poseidon/matchbox `matchbox/http/ignition.go`), as spec 3.4.0; the Ignition in the guest
    applied exactly that document (the digest it logs)."""
    hostnames = []
    for name, b in boots.items():
        record_property(f"boot_seconds_{name}", round(b.result.seconds, 2))
        b.assert_completed()
        m = b.machine
        assert b.result.first("ignition-rc") == "0,0", (
            f"Ignition failed in the guest\n{b.fail_context()}"
        )
        ign = b.paths("/ignition")
        assert len(ign) == 1, f"expected one /ignition request\n{b.fail_context()}"
        assert ign[0].status == 200, b.fail_context()
        assert ign[0].params.get("mac") == [m.mac_hexhyp], b.fail_context()
        assert ign[0].selection.get("group") == m.name, b.fail_context()
        assert ign[0].selection.get("profile") == m.profile["id"], b.fail_context()

        fetched = [
            match.groups()
            for line in b.result.report.get("ignition-log", [])
            if (match := _FETCHED.search(line))
        ]
        assert len(fetched) == 1, f"Ignition logged no fetched config\n{b.fail_context()}"
        url, sha512 = fetched[0]
        assert url == b.result.first("ignition-url"), (url, b.fail_context())
        status, served = fetch(lab.server, f"{urlsplit(url).path}?{urlsplit(url).query}")
        assert status == 200, f"Matchbox answers {status} for {url} now"
        assert hashlib.sha512(served).hexdigest() == sha512, (
            f"{name} applied another document than Matchbox serves at {url}"
        )
        served_config = json.loads(served)
        assert served_config["ignition"]["version"] == "3.4.0"
        assert served_config == translation.serve(m.ignition_file.read_bytes()), (
            f"{name} was served another Ignition than {m.ignition_file.name}"
        )

        assert m.expected_hostname, f"{m.ignition_file} writes no /etc/hostname"
        assert b.result.first("hostname") == m.expected_hostname, b.fail_context()
        hostnames.append(m.expected_hostname)
    assert len(set(hostnames)) == len(hostnames) >= 2, hostnames


def test_ipxe_variables_are_expanded(boots: dict[str, MachineBoot]) -> None:
    for b in boots.values():
        b.assert_completed()
        vm = b.machine.vm()
        cmdline = b.result.first("cmdline") or ""
        assert "${" not in cmdline, f"unexpanded iPXE variable in {cmdline!r}"
        for r in b.requests:
            assert "${" not in unquote(r.target), f"unexpanded: {r.target}"
        assert len(b.paths("/boot.ipxe")) == 1, b.fail_context()
        ipxe = b.paths("/ipxe")
        assert len(ipxe) == 1 and ipxe[0].status == 200, b.fail_context()
        assert ipxe[0].selection.get("profile") == b.machine.profile["id"], b.fail_context()
        # The query /boot.ipxe chains with (poseidon/matchbox `matchbox/http/ipxe.go`
        # ipxeBootstrap; `docs/api-http.md` still shows it without `arch`).
        params = {k: v[0] for k, v in ipxe[0].params.items()}
        assert params == {
            "uuid": vm.uuid,
            "mac": b.machine.mac_hexhyp,
            "domain": vm.domain,
            "hostname": vm.hostname,
            "serial": vm.serial,
            "arch": IPXE_BUILDARCH,
        }, b.fail_context()
        assert re.fullmatch(r"([0-9a-f]{2}-){5}[0-9a-f]{2}", params["mac"])
        ign_url = b.result.first("ignition-url") or ""
        assert f"mac={b.machine.mac_hexhyp}" in ign_url, ign_url
        assert f"uuid={vm.uuid}" in ign_url, ign_url


def test_profile_args_arrive_verbatim(boots: dict[str, MachineBoot], lab: Lab) -> None:
    for b in boots.values():
        b.assert_completed()
        boot = b.machine.profile["boot"]
        vm = b.machine.vm()
        expected = " ".join(expand_ipxe(a, vm) for a in boot["args"])
        cmdline = b.result.first("cmdline")
        assert cmdline == expected, (
            f"kernel command line differs from the profile args\n"
            f"  guest:   {cmdline}\n  profile: {expected}"
        )
        tokens = cmdline.split()
        assert any(t.startswith("coreos.inst.install_dev=") for t in tokens), cmdline
        assert any(t.startswith("coreos.live.rootfs_url=") for t in tokens), cmdline
        assert "console=ttyS0" in tokens
        # iPXE fetched exactly the kernel and initrd the profile names ...
        fetched = [r.path for r in b.requests if r.path.startswith("/assets/")]
        kernel = boot["kernel"]
        initrds = [[t for t in i.split() if not t.startswith("--")][-1] for i in boot["initrd"]]
        for ref in [kernel, *initrds]:
            assert ref.removeprefix(lab.matchbox_url) in fetched, (ref, fetched)
        # ... and the rootfs URL on the command line is served.
        for t in tokens:
            if t.startswith("coreos.live.rootfs_url="):
                rel = t.split("=", 1)[1].removeprefix(f"{lab.matchbox_url}/assets/")
                want = hashlib.sha256(lab.rootfs_placeholders[rel]).hexdigest()
                assert b.result.first("rootfs-sha256") == want, b.fail_context()


def test_sysroot_equals_ignition_applied_on_host(
    boots: dict[str, MachineBoot], lab: Lab, tmp_path: Path
) -> None:
    """The guest applied what Matchbox served (spec 3.4.0); the host applies the render's own
    file (spec 3.3.0), with the same Ignition v2.24.0, skeleton and tools: Matchbox's
    translation must not change what lands on the machine."""
    ok, why = can_apply_on_host()
    if not ok:
        skip_or_fail(why)
    for name, b in boots.items():
        b.assert_completed()
        config = reached_from_host(
            b.machine.ignition_file.read_bytes(), lab.matchbox_url, lab.server.http_url
        )
        host, log = apply_and_digest(lab.build, config)
        (tmp_path / f"{name}.host-ignition.log").write_text(log)
        guest_sha = b.result.first("tree-sha256")
        if guest_sha != host.sha256:
            diff = "\n".join(
                difflib.unified_diff(
                    host.manifest, b.result.report.get("manifest", []), "host", "guest", lineterm=""
                )
            )
            pytest.fail(f"{name}: guest /sysroot differs from the host application\n{diff}")
        assert any(line.endswith(" ./etc/hostname") for line in host.manifest)


def remote_files(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config's files that Ignition downloads (an http or https source), by path."""
    return {
        f["path"]: f
        for f in (config.get("storage") or {}).get("files") or []
        if urlsplit(str((f.get("contents") or {}).get("source", ""))).scheme in ("http", "https")
    }


def test_each_machine_downloads_the_node_binaries_verified(
    boots: dict[str, MachineBoot], lab: Lab
) -> None:
    """Every machine's Ignition fetches kubeadm, kubectl, the kubelet and the CNI plugins'
    archive from Matchbox's /assets/, each with the sha256 the stack gave
    (`cluster.binarySha256`), and writes a file only once its download has that digest
    (coreos/ignition v2.24.0 `internal/resource/url.go` decompressCopyHashAndVerify). What
    lands in the guest's /sysroot has the digest of the file Matchbox serves, as the guest's
    own sha256sum finds it (tree-digest.sh), and Matchbox's log shows each machine's request
    for each file."""
    served = {binary.url(lab.matchbox_url): binary for binary in lab.binaries}
    wanted = {url: f"sha256-{binary.sha256}" for url, binary in served.items()}
    for name, b in boots.items():
        b.assert_completed()
        assert b.result.first("ignition-rc") == "0,0", b.fail_context()
        remote = remote_files(json.loads(b.machine.ignition_file.read_bytes()))
        verified = {
            f["contents"]["source"]: (f["contents"].get("verification") or {}).get("hash")
            for f in remote.values()
        }
        assert verified == wanted, f"{name} downloads other files than the lab serves"
        sysroot = manifest_entries(b.result.report.get("manifest", []))
        for path, entry in remote.items():
            binary = served[entry["contents"]["source"]]
            landed = sysroot.get(path)
            assert landed is not None, f"{name}: nothing at {path}\n{b.fail_context()}"
            assert (landed.type, landed.content, landed.owner) == ("f", binary.sha256, "0:0"), (
                f"{name}: {path} is {landed}, not {binary.file}"
            )
            assert int(landed.mode, 8) == entry["mode"], (name, path, landed.mode)
            requests = b.paths(f"/assets/{binary.asset}")
            assert len(requests) == 1, f"{name} asked {len(requests)} times for {binary.asset}"


def test_a_tampered_binary_fails_the_guests_ignition(lab: Lab, tmp_path: Path) -> None:
    """Matchbox serves a kubeadm that is not the build the stack's digest names (same size, one
    byte changed): the guest's Ignition downloads it, refuses it (`hash verification failed`,
    coreos/ignition v2.24.0 `internal/util/verification.go` ErrHashMismatch), its files stage
    fails, and nothing is left at kubeadm's path: Ignition writes a download to a temporary
    file beside its path and removes it on failure (`internal/exec/util/file.go`
    PerformFetch). kubeadm because the files stage fetches it before the other binaries (this
    boot is the shortest so; any of them would be refused alike). The real kubeadm is served
    again afterwards."""
    machine = lab.machines[0]
    (kubeadm,) = [binary for binary in lab.binaries if binary.name == "kubeadm"]
    remote = remote_files(json.loads(machine.ignition_file.read_bytes()))
    url = kubeadm.url(lab.matchbox_url)
    (path,) = [p for p, f in remote.items() if f["contents"]["source"] == url]
    data = bytearray(kubeadm.file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "kubeadm"
    tampered.write_bytes(data)
    tampered_sha256 = hashlib.sha256(data).hexdigest()
    served_at = lab.assets_dir / kubeadm.asset
    served_at.unlink()
    served_at.symlink_to(tampered)
    try:
        vm = replace(machine.vm(), name=f"{machine.name}-tampered")
        result, requests = boot_machine(lab, vm, lab.boot_timeout)
    finally:
        served_at.unlink()
        served_at.symlink_to(kubeadm.file)
    b = MachineBoot(machine, result, requests)
    b.assert_completed()
    rc_fetch, _, rc_files = (result.first("ignition-rc") or "").partition(",")
    assert rc_fetch == "0" and rc_files not in ("0", "-", ""), b.fail_context()
    refusal = (
        f"hash verification failed (calculated {tampered_sha256} but expected {kubeadm.sha256})"
    )
    assert any(refusal in line for line in result.report.get("ignition-log", [])), b.fail_context()
    assert len(b.paths(f"/assets/{kubeadm.asset}")) == 1, b.fail_context()
    sysroot = manifest_entries(result.report.get("manifest", []))
    assert path not in sysroot, f"{path} was written\n{b.fail_context()}"
    directory = path.rpartition("/")[0]
    left = [p for p in sysroot if p.startswith(f"{directory}/tmp")]
    assert not left, f"Ignition left {left}"


def test_unknown_mac_gets_404_and_no_config(lab: Lab) -> None:
    """No group selects the MAC: Matchbox answers 404 at `/ipxe` (poseidon/matchbox
    `matchbox/http/ipxe.go`: "No matching profile", http.NotFound), so iPXE has nothing to
    boot and SeaBIOS' reboot-timeout with -no-reboot ends the VM."""
    known = {m.mac for m in lab.machines}
    assert UNKNOWN_MAC not in known
    vm = qemu_vm.Machine(
        name="unknown",
        mac=UNKNOWN_MAC,
        uuid="00000000-0000-4000-8000-000000000099",
        serial="SN-unknown",
        hostname="unknown",
        domain="lab.internal",
    )
    result, requests = boot_machine(lab, vm, timeout=min(lab.boot_timeout, 45.0))
    context = result.describe() + "\nrequests in Matchbox's log:\n" + describe_requests(requests)
    ipxe = [r for r in requests if r.path == "/ipxe"]
    assert ipxe, f"the machine never asked /ipxe\n{context}"
    assert all(r.status == 404 for r in ipxe), context
    assert ipxe[0].params.get("mac") == ["52-54-00-a1-00-99"], context
    # Asked again, Matchbox gives the same answer for the very request the machine made ...
    assert fetch(lab.server, ipxe[0].target)[0] == 404, context
    # ... and iPXE saw it: an HTTP 404 is its ENOENT_404 (ipxe `src/net/tcp/httpcore.c`).
    assert "ipxe... No such file or directory" in result.console, context
    assert not [r for r in requests if r.path == "/ignition"], context
    assert not [r for r in requests if r.path.startswith("/assets/")], context
    assert "begin" not in result.report, "a kernel booted for an unknown MAC\n" + context


def test_flatcar_flavor_ignition_config_url(lab: Lab, tmp_path: Path) -> None:
    """Flatcar profiles pass ``ignition.config.url=``; Ignition reads it from the
    command line itself. Served by a second real Matchbox so the lab's own data stays as
    rendered."""
    data = tmp_path / "matchbox"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True)
    assets = tmp_path / "assets"
    port = free_port()
    url = f"http://{qemu_vm.HOST_FROM_GUEST}:{port}"
    base = "/assets/flatcar/current"
    profile: dict[str, Any] = {
        "id": "lab-f1",
        "name": "lab-f1",
        "boot": {
            "kernel": f"{base}/flatcar_production_pxe.vmlinuz",
            "initrd": [f"{base}/flatcar_production_pxe_image.cpio.gz"],
            "args": [
                "initrd=flatcar_production_pxe_image.cpio.gz",
                "flatcar.first_boot=1",
                f"ignition.config.url={url}/ignition?uuid=${{uuid}}&mac=${{mac:hexhyp}}",
                "console=ttyS0",
            ],
        },
        "ignition_id": "lab-f1.ign",
    }
    group = {"id": "lab-f1", "profile": "lab-f1", "selector": {"mac": FLATCAR_MAC}}
    ignition = {
        "ignition": {"version": "3.3.0"},
        "storage": {
            "files": [{"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,f1%0A"}}]
        },
    }
    (data / "profiles/lab-f1.json").write_text(json.dumps(profile))
    (data / "groups/lab-f1.json").write_text(json.dumps(group))
    (data / "ignition/lab-f1.ign").write_text(json.dumps(ignition))
    assets.mkdir()
    stage_assets(data, assets, lab.build, url)
    [machine] = machines_in(data)
    vm = machine.vm()
    server = start_matchbox(data, assets, tmp_path, http_port=port, name="matchbox-flatcar")
    RUNNING_MATCHBOXES.append(server)
    try:
        log = MatchboxLog(server.process.log)
        result = qemu_vm.boot(vm, f"{url}/boot.ipxe", tmp_path / "vm", timeout=lab.boot_timeout)
        lab.boot_times.add(result)
        b = MachineBoot(machine, result, log.since())
    finally:
        server.stop()
        RUNNING_MATCHBOXES.remove(server)
    b.assert_completed()
    assert b.result.first("ignition-rc") == "0,0", b.fail_context()
    assert b.result.first("hostname") == "f1", b.fail_context()
    expected = " ".join(expand_ipxe(a, vm) for a in profile["boot"]["args"])
    assert b.result.first("cmdline") == expected, b.fail_context()
    ign_url = expand_ipxe(f"{url}/ignition?uuid=${{uuid}}&mac=${{mac:hexhyp}}", vm)
    ignition_log = b.result.report.get("ignition-log", [])
    assert any(f'parsed url from cmdline: "{ign_url}"' in line for line in ignition_log), (
        ignition_log
    )
    ign = b.paths("/ignition")
    assert len(ign) == 1 and ign[0].params.get("mac") == [machine.mac_hexhyp], b.fail_context()
    assert ign[0].status == 200 and ign[0].selection.get("group") == "lab-f1", b.fail_context()
