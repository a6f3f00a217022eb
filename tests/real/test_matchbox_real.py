"""A real Matchbox (v0.11.0, built by scripts/tools) serves what `stubernetes render` writes.

Two ways in, as in real use: Matchbox reading the render's ``matchbox/`` as its ``-data-path``,
and the render's profiles, groups and Ignition loaded through Matchbox's gRPC API over mutual
TLS (what the Pulumi provider does), with Python stubs compiled from Matchbox's own ``.proto``
files at test time (``matchbox_grpc``). Each machine's MAC must get exactly its profile's iPXE
script and its own Ignition; an unknown MAC gets nothing.

Every Matchbox runs on free loopback ports, started and stopped by a fixture; a failing test
shows the end of its log.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from matchbox_grpc import (
    IgnitionOnMatchbox,
    Matchbox,
    MatchboxClient,
    Stubs,
    TLSFiles,
    generate_stubs,
    make_tls_material,
    start_matchbox,
)
from program_stacks import sized_stack
from repo_paths import EXAMPLE_STACK_FILE, REPO
from tool_cache import require_tool

pytestmark = pytest.mark.real

# The stacks rendered: the example (1 controller, 2 workers) and one with 3 controllers.
STACKS = {"example": None, "three-controllers": (3, 2)}
UNKNOWN_MAC = "52:54:00:ff:ff:99"

# What /boot.ipxe (and /boot.ipxe.0) answer: poseidon/matchbox v0.11.0
# `matchbox/http/ipxe.go` ipxeBootstrap. Its docs (`docs/api-http.md`) still show the chain
# without the `arch` query parameter that the code has added.
BOOT_IPXE = (
    "#!ipxe\n"
    "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}"
    "&serial=${serial}&arch=${buildarch:uristring}\n"
)


@dataclass(frozen=True)
class Render:
    name: str
    root: Path  # --out of stubernetes render

    @property
    def data_path(self) -> Path:
        return self.root / "matchbox"

    def profiles(self) -> dict[str, dict[str, Any]]:
        return _json_files(self.data_path / "profiles")

    def groups(self) -> dict[str, dict[str, Any]]:
        return _json_files(self.data_path / "groups")

    def ignition(self, name: str) -> bytes:
        return (self.data_path / "ignition" / name).read_bytes()

    def machines(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(MAC, group, profile) per group; every rendered group selects one MAC."""
        profiles = self.profiles()
        out = []
        for group in self.groups().values():
            assert set(group["selector"]) == {"mac"}, group
            out.append((group["selector"]["mac"], group, profiles[group["profile"]]))
        return out


def _json_files(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def render_stack(name: str, dest: Path) -> Render:
    stack = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    sizes = STACKS[name]
    if sizes is not None:
        prefix = "stubernetes:"
        values = {k.removeprefix(prefix): v for k, v in stack["config"].items()}
        stack["config"] = {f"{prefix}{k}": v for k, v in sized_stack(values, *sizes).items()}
    stack_file = dest / f"Pulumi.{name}.yaml"
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    out = dest / "render"
    command = ["render", "--stack-file", str(stack_file), "--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "stubernetes.cli", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, f"render failed ({run.returncode}):\n{run.stdout}\n{run.stderr}"
    return Render(name, out)


@contextmanager
def logs_on_failure(*servers: Matchbox) -> Iterator[None]:
    """Re-raise a failure with the end of each Matchbox's log."""
    try:
        yield
    except (AssertionError, grpc.RpcError, urllib.error.URLError) as failure:
        tails = "\n".join(s.log_tail() for s in servers)
        raise AssertionError(f"{failure}\n{tails}") from failure


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def get(server: Matchbox, target: str) -> Answer:
    try:
        with urllib.request.urlopen(server.http_url + target, timeout=10) as response:
            return Answer(response.status, response.headers["Content-Type"], response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers["Content-Type"], error.read())


def hexhyp(mac: str) -> str:
    """iPXE's ``${mac:hexhyp}``: lower-case hex octets joined by hyphens."""
    return mac.replace(":", "-")


def expected_ipxe(profile: dict[str, Any]) -> str:
    """poseidon/matchbox `matchbox/http/ipxe.go` ipxeTemplate: ``#!ipxe``, ``kernel`` with the
    profile's args, one ``initrd`` line per initrd, ``boot``."""
    boot = profile["boot"]
    kernel = " ".join([boot["kernel"], *boot.get("args", [])])
    initrds = "".join(f"initrd {i}\n" for i in boot.get("initrd", []))
    return f"#!ipxe\nkernel {kernel}\n{initrds}boot\n"


def only_added_empty_objects(served: Any, rendered: Any) -> bool:
    """Whether ``served`` is ``rendered`` plus keys whose values are (nested) empty objects."""

    def empty(value: Any) -> bool:
        return isinstance(value, dict) and all(empty(v) for v in value.values())

    if isinstance(served, dict) and isinstance(rendered, dict):
        extra = set(served) - set(rendered)
        return (
            set(rendered) <= set(served)
            and all(empty(served[k]) for k in extra)
            and all(only_added_empty_objects(served[k], rendered[k]) for k in rendered)
        )
    if isinstance(served, list) and isinstance(rendered, list):
        return len(served) == len(rendered) and all(
            only_added_empty_objects(s, r) for s, r in zip(served, rendered, strict=True)
        )
    return bool(served == rendered)


def ignition_validate(config: bytes, workdir: Path) -> str:
    """Ignition v2.24.0's validator; any output at all is a finding (it only warns on some)."""
    binary = require_tool("ignition", "ignition-validate")
    path = workdir / f"validate-{hashlib.sha256(config).hexdigest()[:12]}.ign"
    path.write_bytes(config)
    run = subprocess.run(
        [str(binary), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    output = (run.stdout + run.stderr).strip()
    return output or ("" if run.returncode == 0 else f"exited {run.returncode}")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=sorted(STACKS))
def render(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Render:
    return render_stack(str(request.param), tmp_path_factory.mktemp(f"render-{request.param}"))


@pytest.fixture(scope="module")
def served(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matchbox]:
    """Matchbox with the render's ``matchbox/`` as its ``-data-path``."""
    work = tmp_path_factory.mktemp(f"matchbox-{render.name}")
    (work / "assets").mkdir()
    server = start_matchbox(render.data_path, work / "assets", work, name=f"matchbox-{render.name}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def translation() -> IgnitionOnMatchbox:
    return IgnitionOnMatchbox.for_matchbox(require_tool("matchbox", "matchbox"))


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Stubs:
    return generate_stubs(tmp_path_factory.mktemp("matchbox-stubs"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_material(tmp_path_factory.mktemp("matchbox-tls"))


@pytest.fixture
def rpc_server(tls: TLSFiles, tmp_path: Path) -> Iterator[Matchbox]:
    """Matchbox with its gRPC API, on an empty data directory."""
    data = tmp_path / "data"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True)
    (tmp_path / "assets").mkdir()
    server = start_matchbox(data, tmp_path / "assets", tmp_path, tls=tls, name="matchbox-rpc")
    yield server
    server.stop()


# ------------------------------------------------------------------------------- HTTP


def test_each_mac_gets_its_profiles_ipxe_script(render: Render, served: Matchbox) -> None:
    """`/ipxe` selects the group by the `mac` label and renders the profile's boot
    (poseidon/matchbox `matchbox/http/ipxe.go`; group selection `matchbox/server/server.go`
    SelectGroup). The MAC is parsed with Go's net.ParseMAC before matching
    (`matchbox/http/parse.go` labelsFromRequest), so iPXE's `${mac:hexhyp}`, colons and upper
    case all select the same group."""
    machines = render.machines()
    assert len(machines) == len(render.profiles()) >= 3
    with logs_on_failure(served):
        for mac, group, profile in machines:
            want = expected_ipxe(profile)
            for form in (hexhyp(mac), mac, hexhyp(mac).upper()):
                answer = get(served, f"/ipxe?uuid=u-{group['id']}&mac={form}")
                assert answer.status == 200, (group["id"], form, answer)
                assert answer.body.decode() == want, (group["id"], form)
            lines = want.splitlines()
            assert lines[0] == "#!ipxe" and lines[-1] == "boot"
            assert lines[1].split()[1] == profile["boot"]["kernel"]
            assert [ln.removeprefix("initrd ") for ln in lines[2:-1]] == profile["boot"]["initrd"]


def test_each_mac_gets_its_own_ignition_as_spec_3_4(
    render: Render, served: Matchbox, translation: IgnitionOnMatchbox, tmp_path: Path
) -> None:
    """`/ignition` parses the profile's raw Ignition with Ignition's v3_4 ParseCompatibleVersion
    and writes the Go value back as JSON (poseidon/matchbox `matchbox/http/ignition.go`,
    `matchbox/http/render.go`): spec 3.4.0, with the struct-typed fields the render leaves out
    written as empty objects. `IgnitionOnMatchbox` computes that from the render by the rules
    of encoding/json and the Go types of coreos/ignition `config/v3_4/types/schema.go`."""
    seen: dict[str, str] = {}
    with logs_on_failure(served):
        for mac, group, profile in render.machines():
            rendered = render.ignition(profile["ignition_id"])
            answer = get(served, f"/ignition?uuid=u&mac={hexhyp(mac)}")
            assert answer.status == 200, (group["id"], answer)
            assert answer.content_type == "application/json"
            body = json.loads(answer.body)
            assert body["ignition"]["version"] == "3.4.0"
            assert json.loads(rendered)["ignition"]["version"] == "3.3.0"
            assert body == translation.serve(rendered), group["id"]
            # The same, said without the model: only the version changed, and what was added
            # is empty objects.
            downgraded = {**body, "ignition": {**body["ignition"], "version": "3.3.0"}}
            assert only_added_empty_objects(downgraded, json.loads(rendered)), group["id"]
            assert ignition_validate(answer.body, tmp_path) == "", group["id"]
            assert ignition_validate(rendered, tmp_path) == "", group["id"]
            seen[group["id"]] = hashlib.sha256(answer.body).hexdigest()
    assert len(set(seen.values())) == len(seen), "two machines were served the same Ignition"


def test_unknown_or_unparseable_mac_gets_404(render: Render, served: Matchbox) -> None:
    """No group matches: `/ipxe` and `/ignition` answer 404 (`matchbox/http/ipxe.go`,
    `matchbox/http/ignition.go`: http.NotFound). A MAC that does not parse is dropped from the
    labels (`matchbox/http/parse.go`), and every rendered group selects on `mac`."""
    assert UNKNOWN_MAC not in {mac for mac, _, _ in render.machines()}
    with logs_on_failure(served):
        for target in (
            f"/ipxe?mac={hexhyp(UNKNOWN_MAC)}",
            f"/ignition?mac={hexhyp(UNKNOWN_MAC)}",
            "/ipxe?mac=not-a-mac",
            "/ignition?mac=not-a-mac",
            "/ipxe",
            "/ignition",
        ):
            answer = get(served, target)
            assert answer.status == 404, (target, answer)
        assert "No matching profile" in served.log_tail(200)
        assert "No matching group" in served.log_tail(200)


def test_boot_ipxe_chains_to_ipxe_with_the_machines_variables(
    render: Render, served: Matchbox
) -> None:
    """`/boot.ipxe` and `/boot.ipxe.0` answer the chain script of `matchbox/http/ipxe.go`. It
    chains to the relative `ipxe?...` with `${mac:hexhyp}` and `${uuid}`: the variables the
    render's Ignition URLs use too, which `/ignition` accepts in that form (test above)."""
    with logs_on_failure(served):
        for path in ("/boot.ipxe", "/boot.ipxe.0"):
            answer = get(served, path)
            assert answer.status == 200, (path, answer)
            assert answer.body.decode() == BOOT_IPXE, path
    chain = BOOT_IPXE.splitlines()[1]
    assert chain.startswith("chain ipxe?") and "mac=${mac:hexhyp}" in chain
    for _, group, profile in render.machines():
        urls = [a for a in profile["boot"]["args"] if a.startswith("coreos.inst.ignition_url=")]
        assert len(urls) == 1, group["id"]
        assert urls[0].endswith("/ignition?uuid=${uuid}&mac=${mac:hexhyp}"), urls


def test_translation_rule_on_what_the_render_does_not_exercise(
    translation: IgnitionOnMatchbox, tmp_path: Path
) -> None:
    """The model of Matchbox's re-serving, held against the real Matchbox on a config with what
    the render lacks: setuid/setgid/sticky mode bits (dropped for specs below 3.4,
    coreos/ignition `config/v3_4/translate/translate.go`), nulls, empty lists, false booleans,
    dropins, links, directories, groups, key case (encoding/json matches keys
    case-insensitively)."""
    config = {
        "ignition": {"version": "3.3.0", "timeouts": {"httpTotal": None}},
        "passwd": {
            "users": [{"name": "u", "groups": [], "shouldExist": False, "uid": 0}],
            "groups": [{"name": "g", "gid": 2000}],
        },
        "storage": {
            "files": [
                {
                    "path": "/usr/local/bin/s",
                    "mode": 0o4755,
                    "overwrite": False,
                    "contents": {"source": "data:,x", "httpHeaders": []},
                    "user": {"name": "u"},
                },
                {"path": "/etc/empty", "Mode": 0o644},
            ],
            "directories": [{"path": "/var/d", "mode": 0o1777}],
            "links": [{"path": "/etc/l", "target": "/etc/empty", "hard": False}],
        },
        "systemd": {
            "units": [
                {"name": "a.service", "enabled": False, "dropins": [{"name": "x.conf"}]},
                {"name": "b.service", "mask": True},
            ]
        },
        "kernelArguments": {"shouldExist": ["quiet"], "shouldNotExist": []},
    }
    raw = json.dumps(config).encode()
    data = tmp_path / "data"
    for sub in ("profiles", "groups", "ignition"):
        (data / sub).mkdir(parents=True)
    (data / "ignition" / "edge.ign").write_bytes(raw)
    (data / "profiles" / "edge.json").write_text(
        json.dumps({"id": "edge", "boot": {"kernel": "/k"}, "ignition_id": "edge.ign"})
    )
    (data / "groups" / "edge.json").write_text(
        json.dumps({"id": "edge", "profile": "edge", "selector": {"mac": UNKNOWN_MAC}})
    )
    (tmp_path / "assets").mkdir()
    server = start_matchbox(data, tmp_path / "assets", tmp_path, name="matchbox-edge")
    try:
        with logs_on_failure(server):
            answer = get(server, f"/ignition?mac={UNKNOWN_MAC}")
            assert answer.status == 200, answer
            body = json.loads(answer.body)
            assert body == translation.serve(raw)
            assert body["storage"]["files"][0]["mode"] == 0o755
            assert body["storage"]["directories"][0]["mode"] == 0o777
            assert body["storage"]["files"][1]["mode"] == 0o644  # "Mode" matched "mode"
            assert "groups" not in body["passwd"]["users"][0]  # an empty list is omitted
            assert body["passwd"]["users"][0]["shouldExist"] is False  # a set pointer is kept
    finally:
        server.stop()
    with pytest.raises(ValueError, match="Matchbox drops it"):
        translation.serve(json.dumps({**config, "storage": {"filez": []}}).encode())


# ------------------------------------------------------------------------------- gRPC


def test_grpc_loads_the_render_and_http_then_serves_it(
    render: Render,
    served: Matchbox,
    rpc_server: Matchbox,
    tls: TLSFiles,
    stubs: Stubs,
) -> None:
    """ProfilePut, GroupPut and IgnitionPut each render file through the gRPC API over mutual
    TLS (services and messages: poseidon/matchbox `matchbox/rpc/rpcpb/rpc.proto`,
    `matchbox/server/serverpb/messages.proto`, `matchbox/storage/storagepb/storage.proto`);
    the Get calls read back what the render wrote (a group's metadata travels JSON-encoded
    in `bytes metadata`: `matchbox/storage/storagepb/group.go` RichGroup); Matchbox's own
    files (`matchbox/storage/filestore.go`) hold the same JSON; and its HTTP API then answers
    every MAC exactly as the Matchbox reading the render directly does."""
    profiles, groups = render.profiles(), render.groups()
    with (
        logs_on_failure(rpc_server, served),
        MatchboxClient(rpc_server.rpc_target, tls, stubs) as client,
    ):
        client.wait_ready()
        assert client.profile_list() == [] and client.group_list() == []
        for profile in profiles.values():
            name = profile["ignition_id"]
            client.ignition_put(name, render.ignition(name))
            client.profile_put(profile)
        for group in groups.values():
            client.group_put(group)

        for pid, profile in profiles.items():
            assert client.profile_get(pid) == profile
            assert client.ignition_get(profile["ignition_id"]) == render.ignition(
                profile["ignition_id"]
            )
        for gid, group in groups.items():
            assert client.group_get(gid) == group
        assert sorted(p["id"] for p in client.profile_list()) == sorted(profiles)
        assert sorted(g["id"] for g in client.group_list()) == sorted(groups)

        written = rpc_server.data_path
        for pid, profile in profiles.items():
            assert json.loads((written / "profiles" / f"{pid}.json").read_text()) == profile
        for gid, group in groups.items():
            assert json.loads((written / "groups" / f"{gid}.json").read_text()) == group
        for profile in profiles.values():
            name = profile["ignition_id"]
            assert (written / "ignition" / name).read_bytes() == render.ignition(name)

        for mac, group, _ in render.machines():
            for path in ("/ipxe", "/ignition"):
                target = f"{path}?uuid=u&mac={hexhyp(mac)}"
                loaded, direct = get(rpc_server, target), get(served, target)
                assert loaded.status == direct.status == 200, (group["id"], path)
                assert loaded.body == direct.body, (group["id"], path)

        # Deleting a machine's group takes it off the HTTP API at once.
        mac, group, profile = render.machines()[0]
        client.group_delete(group["id"])
        assert get(rpc_server, f"/ipxe?mac={hexhyp(mac)}").status == 404
        assert get(rpc_server, f"/ignition?mac={hexhyp(mac)}").status == 404
        client.profile_delete(profile["id"])
        client.ignition_delete(profile["ignition_id"])
        with pytest.raises(grpc.RpcError) as missing:
            client.profile_get(profile["id"])
        # Storage errors come back as UNKNOWN (`matchbox/rpc/errors.go` grpcError).
        assert missing.value.code() == grpc.StatusCode.UNKNOWN
        assert sorted(g["id"] for g in client.group_list()) == sorted(set(groups) - {group["id"]})


def test_grpc_refuses_a_client_without_a_certificate_of_its_ca(
    rpc_server: Matchbox, tls: TLSFiles, stubs: Stubs, tmp_path: Path
) -> None:
    """The gRPC server requires and verifies a client certificate against `-ca-file`
    (poseidon/matchbox `matchbox/tlsutil/tls.go` ServerConfig: RequireAndVerifyClientCert)."""
    stranger = make_tls_material(tmp_path / "other-ca")
    foreign = TLSFiles(
        tls.ca_cert, tls.server_cert, tls.server_key, stranger.client_cert, stranger.client_key
    )
    with logs_on_failure(rpc_server):
        with MatchboxClient(rpc_server.rpc_target, tls, stubs) as trusted:
            assert trusted.group_list() == []
        with MatchboxClient(rpc_server.rpc_target, foreign, stubs, timeout_seconds=5) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.group_list()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        channel = grpc.secure_channel(
            rpc_server.rpc_target,
            grpc.ssl_channel_credentials(root_certificates=tls.ca_cert.read_bytes()),
        )
        try:
            stub = stubs.rpc_pb2_grpc.GroupsStub(channel)
            with pytest.raises(grpc.RpcError) as anonymous:
                stub.GroupList(stubs.messages_pb2.GroupListRequest(), timeout=5)
            assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            channel.close()
