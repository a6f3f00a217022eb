"""The program through the real Pulumi engine: preview, up, reinstalls, a Kubernetes upgrade
rollout, export and destroy.

The real CLI (v3.274.1) runs ``components.program.pulumi_program`` as an Automation API inline
program (tests/engine/driver.py) with a file backend and the passphrase secrets provider; the
plugins are the stand-ins of tests/engine/bin for random, tls, command and matchbox, and the
real Kubernetes provider. The stack is the example's with a second and a third controller and
the API endpoint at a virtual address (with_three_controllers below), on the previous minor's
newest pinned release (FROM_RELEASE, which tests 5e-5h upgrade to the built kubeadm's), adapted
to the lab (engine.stacks.lab_values): every machine's ``pxeCommand`` is its network boot in the lab
(tests/engine/lab.py), which fetches its iPXE script and Ignition from the real Matchbox by MAC;
the init controller's boot starts the real control plane from that Ignition (the PKI the engine
made), every other machine's runs the real ``kubeadm join`` preflight against it (and a
controller's the download of its certificates) and registers its kwok Node as a new boot.

The engine, its plugins and the program's Commands run inside the lab's network namespace,
which carries the machines' and the API endpoint's addresses (tests/engine/lab.py says why).
One lab and one state for the whole module, the tests in order; each engine action's time is
printed at the end.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.program_output import KUBEADM_CONFIG
from control_plane.stacks import kubeadm_version, with_second_controller
from test_reinstall import chain
from tool_cache import tool_bin

from engine.driver import PROJECT, stack_settings_file, stack_values
from engine.lab import LabHandle, machine_from_ignition, start_lab
from engine.rollout import (
    UPGRADE_STEP,
    nodes,
    service_answers,
    set_kubernetes_version,
    step_seconds,
    step_spans,
    upgrade_asks,
)
from engine.session import REPO, EngineRun, run_action
from engine.stacks import lab_secrets, mock_registrations, namespace_addresses, write_stack_file
from stackconfig import parse_stack_config
from stackconfig.release_digests import newest_pinned_patch

pytestmark = pytest.mark.engine

STACK = "lab"
SOLO = "solo"
TOOLS = (
    ("pulumi", "pulumi"),
    ("pulumi-kubernetes", "pulumi-resource-kubernetes"),
    ("matchbox", "matchbox"),
    ("etcd", "etcd"),
    ("etcd", "etcdctl"),
    ("kubernetes", "kubeadm"),
    ("kubernetes", "kube-apiserver"),
    ("kubernetes", "kubectl"),
    ("kwok", "kwok"),
)
PROFILE = "matchbox:index/profile:Profile"
GROUP = "matchbox:index/group:Group"
# The machines a reinstall test reinstalls: a worker and a controller that did not found the
# cluster (reinstalling the only controller, or the founding one, are other tests' business).
REINSTALLED = ("w1", "c2")
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"


def _previous_minor_release(release: str) -> str:
    """The newest pinned patch (stackconfig/pinned_digests.py) of the minor before
    ``release``'s."""
    major, minor, _ = release.split(".")
    previous = newest_pinned_patch(f"{major}.{int(minor) - 1}")
    assert previous is not None, f"no pinned release of the minor before {release}"
    return previous


# The rollout of tests 5e-5h is a minor bump, kubeadm's upgrade "from one MINOR version to the
# next MINOR version" (kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/):
# from the previous minor's newest pinned patch (today 1.35.8) to the release of the built
# kubeadm (today 1.36.3), whose binaries the lab's control plane runs. The session's stack
# starts at the former: the built kubeadm deploys its own minor and the one before (kubernetes
# cmd/kubeadm/app/constants/constants.go MinimumControlPlaneVersion), and the lab keeps such a
# release (engine.stacks.lab_release). Both releases' digests are pinned, which the program
# needs of every release it installs.
TO_RELEASE = kubeadm_version()
FROM_RELEASE = _previous_minor_release(TO_RELEASE)
BUMP_PREVIEW = f"5e preview (bump {FROM_RELEASE} -> {TO_RELEASE})"


# --------------------------------------------------------------------------- the session


def urn_key(urn: str) -> tuple[str, str]:
    """``(type, name)`` of a URN: the last type of its chain, and its name."""
    parts = urn.split("::")
    return parts[2].split("$")[-1], "::".join(parts[3:])


@dataclass
class Session:
    lab: LabHandle
    work: Path
    stack_file: Path
    values: dict[str, Any]
    timings: list[tuple[str, float]] = field(default_factory=list)
    runs: dict[str, EngineRun] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    last: EngineRun | None = None

    def run(self, name: str, action: str, machine: str = "", stack: str = STACK) -> EngineRun:
        stack_file = self.stack_file if stack == STACK else self.work / f"Pulumi.{stack}.yaml"
        started = time.monotonic()
        result = run_action(self.lab, stack, action, machine, stack_file=stack_file)
        self.timings.append((name, time.monotonic() - started))
        self.runs[name] = result
        self.last = result
        return result

    def needs(self, *names: str) -> None:
        missing = [n for n in names if n not in self.runs or not self.runs[n].ok]
        if missing:
            pytest.skip(f"an earlier step did not complete: {', '.join(missing)}")

    def stack_values(self, stack: str = STACK) -> dict[str, Any]:
        return stack_values(self.work, stack)

    def boots(self) -> list[dict[str, Any]]:
        return [b for b in self.lab.boots() if b["event"] == "pxe"]

    def wait_installed(self, timeout: float = 60) -> dict[str, Any]:
        """The lab's machines once none is still installing."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.lab.status()
            if not status["installing"] or time.monotonic() > deadline:
                return status
            time.sleep(0.5)


def with_three_controllers(values: dict[str, Any]) -> dict[str, Any]:
    """The example's machines with controllers c2 and c3 beside the init controller, the API
    endpoint at a virtual address (control_plane.stacks.with_second_controller). Three, since
    the program refuses to reinstall one controller of two in one update: etcd keeps working
    only while a majority of its members do (stackconfig/removal.py, the etcd runtime
    reconfiguration docs), and test 4 reinstalls a controller that did not found the cluster."""
    changed = with_second_controller(values)
    machines = changed["machines"]
    second = ipaddress.ip_interface(machines["c2"]["address"])
    used = {
        str(ipaddress.ip_interface(m["address"]).ip) for m in machines.values() if "address" in m
    }
    used |= {
        changed["cluster"]["apiEndpoint"].rpartition(":")[0],
        machines["c2"].get("gateway", ""),
    }
    free = next(str(h) for h in second.network.hosts() if str(h) not in used)
    machines["c3"] = {
        **copy.deepcopy(machines["c2"]),
        "mac": "52:54:00:a1:00:c3",
        "address": f"{free}/{second.network.prefixlen}",
    }
    return changed


def _missing_tools() -> list[str]:
    return [f"{tool}:{binary}" for tool, binary in TOOLS if tool_bin(tool, binary) is None]


@pytest.fixture(scope="module")
def session(
    example_values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"not built: {', '.join(missing)} (run ./scripts/tools)")
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("the lab needs root, unshare and nsenter (a network namespace, chroot)")
    work = tmp_path_factory.mktemp("engine")
    values = with_three_controllers(example_values)
    values["cluster"]["kubernetesVersion"] = FROM_RELEASE
    stack_file = work / f"Pulumi.{STACK}.yaml"
    write_stack_file(stack_file, values)
    lab = start_lab(work, namespace_addresses(values))
    state = Session(lab, work, stack_file, values)
    try:
        yield state
    finally:
        total = sum(seconds for _, seconds in state.timings)
        table = "\n".join(f"  {name:<40} {seconds:7.1f} s" for name, seconds in state.timings)
        print(f"\nengine steps ({total:.0f} s in all):\n{table}")
        children = lab.children_alive()
        lab.stop()
        assert not lab.alive(), "the lab outlived its stop"
        assert not [p for p in children if Path(f"/proc/{p}").exists()], "lab children left"


@pytest.fixture(autouse=True)
def attach_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """On a failure: the engine's last output and the tail of every lab log."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed and "session" in request.fixturenames:
        state: Session = request.getfixturevalue("session")
        if state.last is not None:
            print(f"--- the engine's last output ---\n{state.last.explain()}")
        print(state.lab.log_tails(40))


# --------------------------------------------------------------------------- helpers


def changed(run: EngineRun) -> dict[str, int]:
    """The change summary without what is no change: ``same``, and the ``read`` of the stack's
    reference to itself (read afresh on every run)."""
    return {op: n for op, n in run.changes.items() if op not in ("same", "read")}


def changed_resources(run: EngineRun) -> dict[tuple[str, str], list[str]]:
    ops: dict[tuple[str, str], list[str]] = {}
    for op, urn in run.steps:
        if op not in ("same", "read"):
            ops.setdefault(urn_key(urn), []).append(op)
    return ops


def replaced(run: EngineRun) -> set[tuple[str, str]]:
    return {urn_key(urn) for urn in run.replaced}


STATUS_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
STATUS_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"


def status_binding_updates(machines: tuple[str, ...]) -> set[tuple[str, str]]:
    """The status reports' RoleBindings: their subject (the new token's user) changes, which
    pulumi-kubernetes updates in place (only a RoleBinding's roleRef is immutable: kubernetes
    pkg/apis/rbac/validation ValidateRoleBindingUpdate), so they are updated, not replaced."""
    return {(STATUS_BINDING, f"lab-{m}-status") for m in machines}


def reinstall_set(machines: tuple[str, ...]) -> set[tuple[str, str]]:
    """What a reinstall replaces: what the mocks tests say it changes (offline/test_reinstall.py
    chain: every resource whose recorded inputs change) but the status RoleBindings, which are
    updated, plus what ``replace_with`` the anchor replaces with its chain though its inputs
    stay: the machine's Matchbox group (test_the_chain_is_replaced_with_the_anchor) and its
    status ConfigMap (a reinstall starts an empty report: components/status_report.py)."""
    replaced_with = {
        item
        for m in machines
        for item in ({*chain(m), (GROUP, f"lab-{m}"), (STATUS_CONFIGMAP, f"lab-{m}-status")})
    }
    return replaced_with - status_binding_updates(machines)


def object_files(dump: dict[str, Any], machine: str) -> dict[str, Any]:
    """A machine's files in Matchbox's data path: its profile, group and Ignition."""
    ids = {
        f"profiles/lab-{machine}.json",
        f"groups/lab-{machine}.json",
        f"ignition/lab-{machine}.ign",
    }
    return {path: entry for path, entry in dump["files"].items() if path in ids}


def machines_of(values: dict[str, Any]) -> list[str]:
    return list(values["machines"])


def normal_mac(mac: str) -> str:
    return mac.lower().replace("-", ":")


def join_tokens(ignition: bytes, name: str) -> set[str]:
    """The bootstrap tokens in every JoinConfiguration of the machine's kubeadm configs."""
    machine = machine_from_ignition(name, ignition)
    tokens = set()
    for path in machine.kubeadm_configs():
        for document in yaml.safe_load_all(machine.files[path].contents.decode()):
            if document and document.get("kind") == "JoinConfiguration":
                tokens.add(str(document["discovery"]["bootstrapToken"]["token"]))
    return tokens


def token_secrets(lab: LabHandle) -> dict[str, dict[str, str]]:
    """The token Secrets the program made, by machine, their data decoded."""
    listing = lab.kubectl(
        "get",
        "secrets",
        "-n",
        "kube-system",
        "-l",
        "app.kubernetes.io/managed-by=stubernetes",
        "-o",
        "json",
    )
    found = {}
    for item in json.loads(listing.stdout)["items"]:
        data = {k: base64.b64decode(v).decode() for k, v in item.get("data", {}).items()}
        machine = data["description"].rpartition(" ")[2]
        found[machine] = {"name": item["metadata"]["name"], "type": item["type"], **data}
    return found


def helm_releases(lab: LabHandle, work: Path) -> list[dict[str, Any]]:
    helm = tool_bin("helm", "helm")
    admin = lab.status()["admin_conf"]
    assert helm is not None, "helm is not built: ./scripts/tools helm"
    assert admin, "the lab has no admin kubeconfig"
    env = {
        **os.environ,
        "KUBECONFIG": admin,
        **{f"HELM_{k}_HOME": str(work / "helm" / k.lower()) for k in ("CACHE", "CONFIG", "DATA")},
    }
    done = subprocess.run(
        lab.wrap([str(helm), "list", "--all-namespaces", "--all", "-o", "json"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


def secrets_of(values: dict[str, Any], tls: Path) -> dict[str, Any]:
    """The stack's values with the lab's secrets in them, as the program receives them."""
    merged = copy.deepcopy(values)
    for path, value in lab_secrets(tls).items():
        section, key = path.split(".")
        merged.setdefault(section, {})[key] = value
    return merged


# --------------------------------------------------------------------------- 1. preview


def test_1_preview_of_the_new_stack_creates_what_the_mocks_register(session: Session) -> None:
    """A new stack's preview: every resource the program registers under the SDK's mocks is a
    create, and nothing else happens (besides the engine's own: the stack and the default
    providers; the program reads its own outputs by an invoke, not a resource). The program
    runs exactly as ``__main__.py`` runs it, its config from the inline runtime (the
    engine first showed it reading no config at all). Nothing is downloaded: each
    plugin comes from PATH (the engine's only warnings), none is installed."""
    run = session.run("1 preview (new stack)", "preview")
    assert run.ok, run.explain()
    values = session.stack_values()
    registered = mock_registrations(secrets_of(values, session.work / "tls"))
    engine_only = {("pulumi:pulumi:Stack", f"{PROJECT}-{STACK}")}
    creates = {urn_key(u) for op, u in run.steps if op == "create"}
    default_providers = {
        k for k in creates if k[0].startswith("pulumi:providers:") and k[1].startswith("default")
    }
    assert creates - default_providers - engine_only == registered
    assert run.changes == {"create": len(registered) + 1}, run.changes
    warnings = {d["message"].strip() for d in run.diagnostics("warning")}
    providers = ("random", "tls", "command", "matchbox", "kubernetes")
    assert all(re.fullmatch(r"using pulumi-resource-\S+ from \$PATH at \S+", w) for w in warnings)
    assert {w.split()[1] for w in warnings} == {f"pulumi-resource-{p}" for p in providers}
    plugins = session.work / "pulumi-home" / "plugins"
    assert not plugins.exists() or not any(plugins.iterdir()), "a plugin was installed"
    assert "download" not in run.output.lower()
    # A preview changes nothing: Matchbox is empty and no machine booted.
    dump = session.lab.matchbox()
    assert (dump["profiles"], dump["groups"], dump["files"]) == ([], [], {})
    assert session.boots() == []


# --------------------------------------------------------------------------- 2. up


def test_2_up_deploys_the_cluster(session: Session) -> None:
    """The first ``up`` of the new cluster succeeds (the engine first showed it failing: the
    Kubernetes provider was configured before any API server answered, and pulumi-kubernetes
    then keeps the cluster unreachable for the whole update; test_program.py
    test_the_kubernetes_provider_waits_for_the_api_server pins the fix). Every profile and
    group reads back from the real Matchbox as the program registered it, each machine's
    Ignition is
    served by MAC and carries its own token, whose Secret exists with its ``expiration``; the
    gates passed with their progress in the output; stubernetes-core is deployed; every
    machine booted once and joined."""
    session.needs("1 preview (new stack)")
    run = session.run("2 up", "up")
    assert run.ok, run.explain()
    values = session.stack_values()
    names = machines_of(values)
    status = session.wait_installed()
    assert status["machines"] == {name: "joined" for name in names}, status
    boots = session.boots()
    assert sorted(b["machine"] for b in boots) == sorted(names), boots

    dump = session.lab.matchbox()
    stack = parse_stack_config(secrets_of(values, session.work / "tls"))
    assert [p["id"] for p in dump["profiles"]] == sorted(f"lab-{n}" for n in names)
    assert [g["id"] for g in dump["groups"]] == sorted(f"lab-{n}" for n in names)
    from ignition.pxe import fcos_install_boot

    for machine in stack.machines:
        profile = next(p for p in dump["profiles"] if p["id"] == f"lab-{machine.name}")
        boot = fcos_install_boot(stack, machine)
        assert profile["boot"] == {
            "kernel": boot.kernel,
            "initrd": list(boot.initrds),
            "args": list(boot.args),
        }
        assert profile["ignition_id"] == f"lab-{machine.name}.ign"
        group = next(g for g in dump["groups"] if g["id"] == f"lab-{machine.name}")
        assert group == {
            "id": f"lab-{machine.name}",
            "profile": f"lab-{machine.name}",
            "selector": {"mac": machine.mac},
            "metadata": {"stubernetes_machine": machine.name},
        }
        served = dump["served"][machine.mac]
        assert served["status"] == 200, served
        assert json.loads(served["body"])["ignition"]["version"] == "3.4.0"
        # What the machine booted is what Matchbox serves now (no reinstall yet).
        booted = next(b for b in boots if b["machine"] == machine.name)
        assert booted["ignition_url"].startswith(f"{stack.matchbox.http_endpoint}/ignition?")

    secrets = token_secrets(session.lab)
    assert sorted(secrets) == sorted(names)
    hours = stack.cluster.install_credential_hours
    now = datetime.datetime.now(datetime.UTC)
    for name, secret in secrets.items():
        served = dump["served"][stack.machine(name).mac]["body"].encode()
        token = f"{secret['token-id']}.{secret['token-secret']}"
        assert join_tokens(served, name) == {token}, f"{name}: its Ignition's token"
        assert secret["type"] == "bootstrap.kubernetes.io/token"
        assert secret["name"] == f"bootstrap-token-{secret['token-id']}"
        expiration = datetime.datetime.strptime(secret["expiration"], "%Y-%m-%dT%H:%M:%SZ")
        left = expiration.replace(tzinfo=datetime.UTC) - now
        assert datetime.timedelta(0) < left <= datetime.timedelta(hours=hours), (name, left)

    output = "\n".join(
        r.output for r in session.runs.values() if "up" in r.result.get("action", "")
    )
    assert "gate api: the API server answers" in output
    assert re.search(r"gate api: waiting; not answering: api-server", output)
    # Whether the registered gate waits depends on how fast the machines booted before it ran
    # (on a quiet machine every Node was there at its first look): each line it printed is a
    # progress line or its pass, and it passed.
    registered = re.findall(r"gate registered: (.*)", output)
    progress = rf"\d/{len(names)} done; not registered as Nodes: .+"
    passed = f"passed ({len(names)} machines)"
    assert registered, output
    assert all(re.fullmatch(progress, line) or line == passed for line in registered), registered
    assert passed in registered
    assert f"gate ready: passed ({len(names)} machines)" in output
    releases = {r["name"]: r for r in helm_releases(session.lab, session.work)}
    assert sorted(releases) == ["stubernetes-core"], releases
    assert releases["stubernetes-core"]["status"] == "deployed"
    session.notes["up output"] = output


# --------------------------------------------------------------------------- 3. no change


# The founding stage's one planned change (tests/offline/test_founding_stage.py
# test_the_stage_change_is_one_planned_change_then_nothing, under the mocks): c1's profile gets
# its join Ignition, with no CA key, and its two certificate steps their new settings.
STAGE_CHANGE = {
    (PROFILE, "lab-c1"),
    ("command:local:Command", "lab-c1-upload-certs"),
    ("command:local:Command", "lab-c1-control-plane-joined"),
}


def test_3_preview_after_up_shows_only_the_founding_stage_change(session: Session) -> None:
    """After the first complete up the stack's own outputs say the cluster exists, and the
    only change is the one README *Threat model* plans: the founding controller's Ignition
    without the CA keys, and its certificate steps' settings (updates that re-run nothing).
    No install step of any machine changes: the engine first showed every clean and rejoin
    step updating here (INSTALLED_BEFORE flipping), which the outputs fed back now keep
    (tests/offline/test_install_chain_env.py)."""
    session.needs("2 up")
    run = session.run("3 preview (after up)", "preview")
    session.notes["preview after up"] = run
    assert run.ok, run.explain()
    found = changed_resources(run)
    # The profile's replacement leaves its name unknown in a preview, so its group may show
    # an update of its `profile` with it; nothing else.
    assert set(found) - {(GROUP, "lab-c1")} == STAGE_CHANGE, sorted(found)


def test_3b_one_more_up_converges_and_an_unchanged_stack_previews_no_change(
    session: Session,
) -> None:
    """What the preview above found is all one more up changes (no machine boots for it);
    after it no Ignition that Matchbox holds carries a private key (issue 13's second stage,
    README *Threat model*), and the stack previews no change at all."""
    session.needs("2 up")
    before = session.notes.get("preview after up")
    boots = len(session.boots())
    up = session.run("3b up (converge)", "up")
    assert up.ok, up.explain()
    if before is not None and before.ok:
        assert set(changed_resources(up)) <= set(changed_resources(before))
    assert len(session.boots()) == boots, "a machine booted"
    for ignition_id, config in session.lab.matchbox()["ignition"].items():
        machine = machine_from_ignition(ignition_id.removesuffix(".ign"), config.encode())
        keys = [p for p, e in machine.files.items() if b"PRIVATE KEY" in e.contents]
        assert keys == [], (ignition_id, keys)
    run = session.run("3b preview (unchanged)", "preview")
    assert run.ok, run.explain()
    assert changed(run) == {}, changed_resources(run)
    session.notes["converged"] = session.lab.matchbox()


def test_3c_the_by_hand_command_previews_the_same_stack_and_ends_with_its_json_line(
    session: Session,
) -> None:
    """``python -m tests.engine`` (the README's by-hand session) on the module's own lab and
    state: it finds the lab running in the work folder, prints the engine's output, and its last
    line is the JSON summary, here of the converged stack: no change, nothing replaced."""
    session.needs("3b preview (unchanged)")
    argv = [
        sys.executable,
        "-m",
        "tests.engine",
        "--stack-file",
        str(session.stack_file),
        "--work",
        str(session.work),
        "preview",
    ]
    started = time.monotonic()
    done = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )
    session.timings.append(("3c preview (python -m tests.engine)", time.monotonic() - started))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["action"] == "preview" and summary["stack"] == STACK and summary["ok"]
    assert {k: n for k, n in summary["changes"].items() if k not in ("same", "read")} == {}
    assert summary["changes"].get("same", 0) > 0 and summary["replaced"] == []
    assert isinstance(summary["seconds"], float) and summary["seconds"] > 0
    # The engine's own output came before it, as it came.
    assert any("Previewing update" in line for line in lines[:-1]), lines[:20]
    assert session.lab.alive(), "the command stopped the lab it found"


# --------------------------------------------------------------------------- 4, 5. reinstalls


def deleted_before_created(run: EngineRun) -> list[tuple[str, tuple[str, str]]]:
    """The run's steps, once each reinstalled machine's Matchbox objects are seen deleted before
    their successors are created (delete_before_replace: a Matchbox object's id is its name)."""
    steps = [(op, urn_key(urn)) for op, urn in run.steps]
    for machine in REINSTALLED:
        for kind in (PROFILE, GROUP):
            key = (kind, f"lab-{machine}")
            deleted = steps.index(("delete-replaced", key))
            created = steps.index(("create-replacement", key))
            assert deleted < created, (machine, kind, steps)
    return steps


def _check_reinstall(session: Session, run: EngineRun, before: dict[str, Any], boots: int) -> None:
    """A reinstall of REINSTALLED did exactly what a reinstall does."""
    expected = reinstall_set(REINSTALLED)
    assert replaced(run) == expected, (
        sorted(replaced(run) - expected),
        sorted(expected - replaced(run)),
    )
    assert set(changed_resources(run)) == expected | status_binding_updates(REINSTALLED)
    # The new group exists before the machine boots.
    steps = deleted_before_created(run)
    for machine in REINSTALLED:
        boot = steps.index(
            ("create-replacement", ("command:local:Command", f"lab-{machine}-network-boot"))
        )
        assert steps.index(("create-replacement", (GROUP, f"lab-{machine}"))) < boot
    after = session.lab.matchbox()
    values = session.stack_values()
    for machine in machines_of(values):
        old, new = object_files(before, machine), object_files(after, machine)
        assert sorted(new) == sorted(old), (machine, sorted(new))
        if machine in REINSTALLED:
            assert (
                old[f"ignition/lab-{machine}.ign"]["sha256"]
                != new[f"ignition/lab-{machine}.ign"]["sha256"]
            )
        else:
            # Byte for byte, and not even written again.
            assert new == old, machine
    status = session.wait_installed()
    assert all(status["machines"][m] == "joined" for m in REINSTALLED), status
    new_boots = session.boots()[boots:]
    assert sorted(b["machine"] for b in new_boots) == sorted(REINSTALLED), new_boots
    for booted in new_boots:
        mac = session.stack_values()["machines"][booted["machine"]]["mac"]
        served = after["served"][normal_mac(mac)]["body"].encode()
        assert booted["ignition_sha256"] == hashlib.sha256(served).hexdigest(), booted
    # The old Nodes were drained and deleted, the controller's etcd member looked for through
    # its peer's etcd (kubectl exec into etcd-c1, the real etcdctl), then each came back.
    assert "drained w1" in run.output and "drained c2" in run.output
    assert "no etcd member named c2 (checked through c1)" in run.output
    assert re.search(r"w1 rejoined: Ready, boot w1-boot-\d+-\w+ \(was w1-boot-", run.output)
    assert re.search(r"c2 rejoined: Ready, boot c2-boot-\d+-\w+ \(was c2-boot-", run.output)
    assert "c2 joined the control plane; deleted kube-system/kubeadm-certs" in run.output
    secrets = token_secrets(session.lab)
    for machine in REINSTALLED:
        mac = session.stack_values()["machines"][machine]["mac"]
        served = after["served"][normal_mac(mac)]["body"].encode()
        token = f"{secrets[machine]['token-id']}.{secrets[machine]['token-secret']}"
        assert join_tokens(served, machine) == {token}, machine
    again = session.run(f"{run.result['action']}: preview after", "preview")
    assert again.ok and changed(again) == {}, changed_resources(again)


def test_4_a_generation_bump_reinstalls_exactly_those_machines(session: Session) -> None:
    """A generation bump of w1 and c2: the preview shows their chains replaced and nothing
    else, and changes nothing; ``up`` replaces exactly those (Matchbox objects deleted before
    recreated), both machines boot their new Ignition and rejoin as new boots, and every
    other machine's Matchbox objects are byte-for-byte what they were."""
    session.needs("3b preview (unchanged)")
    machines = ",".join(REINSTALLED)
    before = session.lab.matchbox()
    boots = len(session.boots())
    settings = stack_settings_file(session.work, STACK).read_text()
    preview = session.run("4 preview (bump w1, c2)", "preview-bump", machines)
    assert preview.ok, preview.explain()
    assert replaced(preview) == reinstall_set(REINSTALLED)
    assert changed(preview) == {
        "replace": len(reinstall_set(REINSTALLED)),
        "update": len(REINSTALLED),
    }
    # The preview already shows the Matchbox objects deleted before they are recreated.
    deleted_before_created(preview)
    assert session.lab.matchbox()["files"] == before["files"] and len(session.boots()) == boots
    assert stack_settings_file(session.work, STACK).read_text() == settings
    run = session.run("4 up (bump w1, c2)", "bump", machines)
    assert run.ok, run.explain()
    _check_reinstall(session, run, before, boots)


def test_5_up_replace_of_the_anchor_urn_does_the_same(session: Session) -> None:
    """``pulumi up --replace`` of each machine's install anchor (``stubernetes urn``'s URN), no
    config change: the same reinstall."""
    session.needs("4 up (bump w1, c2)")
    settings = stack_settings_file(session.work, STACK).read_text()
    before = session.lab.matchbox()
    boots = len(session.boots())
    run = session.run("5 up --replace (w1, c2)", "replace", ",".join(REINSTALLED))
    assert run.ok, run.explain()
    from stubernetes.urns import install_anchor_urn

    stack = parse_stack_config(secrets_of(session.stack_values(), session.work / "tls"))
    urns = [install_anchor_urn(stack, stack.machine(m), STACK) for m in REINSTALLED]
    assert run.result["urns"] == urns
    assert stack_settings_file(session.work, STACK).read_text() == settings
    _check_reinstall(session, run, before, boots)


def test_5b_target_replace_replaces_the_anchor_alone_as_the_readme_warns(
    session: Session,
) -> None:
    """README *Reinstall a machine* says to use ``--replace``, not ``--target-replace``: the
    latter is ``--target`` plus ``--replace`` (pulumi/pulumi pkg/cmd/pulumi/operations/up.go,
    the flag's help), so the engine replaces the anchor alone and reinstalls nothing. The
    engine showed it when the README still said ``--target-replace``; this pins the warning."""
    session.needs("5 up --replace (w1, c2)")
    run = session.run("5b preview --target-replace (w1)", "preview-target-replace", "w1")
    assert run.ok, run.explain()
    assert replaced(run) == {("random:index/randomId:RandomId", "lab-w1-install")}
    assert set(changed_resources(run)) == {("random:index/randomId:RandomId", "lab-w1-install")}


def test_5c_a_refused_update_of_the_deployed_stack_changes_nothing(session: Session) -> None:
    """On the deployed cluster, an ``up`` that would reinstall two of its three controllers at
    once (etcd's majority: stackconfig/removal.py) fails with the program's message before any
    resource is registered: Matchbox's files, the machines and every resource in the state
    are as they were (the bump is then taken back out of the settings)."""
    session.needs("5 up --replace (w1, c2)")
    settings = stack_settings_file(session.work, STACK)
    text = settings.read_text()
    before_state = _resources(session.run("5c export (before)", "export"))
    before = session.lab.matchbox()
    boots = len(session.boots())
    try:
        run = session.run("5c up (bump c2, c3: refused)", "bump", "c2,c3")
    finally:
        settings.write_text(text)
    assert not run.ok
    assert "refusing this update of the machines:" in run.output
    assert "machine 'c2': field 'generation': reinstalled: taking c2, c3 out of etcd" in run.output
    assert "machine 'c3': field 'generation': reinstalled: taking c2, c3 out of etcd" in run.output
    # The stack itself and the builtin provider that answered the program's read of its own
    # outputs (components/previous.py), both unchanged: nothing of the program's.
    assert {op for op, _ in run.steps} == {"same"}, run.steps
    assert {urn_key(u)[0] for _, u in run.steps} <= PROGRAM_READS, run.steps
    assert session.lab.matchbox()["files"] == before["files"]
    assert len(session.boots()) == boots
    assert _resources(session.run("5c export (after)", "export")) == before_state


# What a refused update shows, all "same": the stack itself, the builtin provider that answered
# the program's read of its own outputs (components/previous.py), and the command provider
# whose `local:run` read the running cluster (components/cluster_facts.py).
PROGRAM_READS = {"pulumi:pulumi:Stack", "pulumi:providers:pulumi", "pulumi:providers:command"}


def test_5d_a_bump_while_an_upgrade_is_unfinished_is_refused_from_the_cluster(
    session: Session,
) -> None:
    """The program reads the running cluster at its start (components/scripts/cluster-facts,
    through the real engine's invoke of the command provider's `local:run`): with a worker's
    upgrade ConfigMap asking a release newer than the one the last completed update recorded,
    as a rollout that stopped half-way leaves it, a preview of any other release is refused
    before any resource is registered, naming the machine and the release to finish first."""
    session.needs("2 up")
    values = secrets_of(stack_values(session.work, STACK), session.work / "tls")
    recorded = parse_stack_config(values).cluster.kubernetes_release
    major, minor, patch = recorded.split(".")
    unfinished = f"{major}.{minor}.{int(patch) + 1}"
    configmap = "stubernetes-upgrade-w1"
    ask = {"data": {"release": unfinished, "state": "asked"}}
    session.lab.kubectl(
        "-n", "kube-system", "patch", "configmap", configmap, "--type=merge", "-p", json.dumps(ask)
    )  # fmt: skip
    try:
        run = session.run("5d preview (an upgrade unfinished)", "preview")
    finally:
        taken_back = {"data": {"release": None, "state": None}}
        session.lab.kubectl(
            "-n", "kube-system", "patch", "configmap", configmap, "--type=merge",
            "-p", json.dumps(taken_back),
        )  # fmt: skip
    assert not run.ok
    assert (
        f"an upgrade to {unfinished} is unfinished (machine w1: asked); set kubernetesVersion to "
        f"{unfinished} and finish it with `pulumi up` before asking {recorded}"
    ) in run.output
    assert {urn_key(u)[0] for _, u in run.steps} <= PROGRAM_READS, run.steps


# --------------------------------------------------------------------------- 5e-5h. upgrade


# FROM_RELEASE and TO_RELEASE: at the top (the session's stack starts at the former).
# kubeadm's order (components/machine_steps.py UPGRADES): the init controller, the other
# controllers in the stack's order, the workers.
ROLLOUT = ("c1", "c2", "c3", "w1", "w2")
FAILING = "c2"
# The last line of a failed `kubeadm upgrade node`, as kubeadm's phase runner words a failed
# phase ("error execution phase <phase>: ..."), made up by the lab.
FAULT = "error execution phase kubelet-config: injected by the engine lab"
PLAN = (
    f"Kubernetes {FROM_RELEASE} -> {TO_RELEASE}, one machine at a time, each drained, upgraded "
    "by its own upgrade service and uncordoned: c1 (kubeadm upgrade apply) -> c2 (kubeadm "
    "upgrade node) -> c3 (kubeadm upgrade node) -> w1 (kubeadm upgrade node) -> w2 (kubeadm "
    "upgrade node)"
)


def upgrade_step(machine: str) -> tuple[str, str]:
    return (UPGRADE_STEP, f"lab-{machine}-upgrade")


def test_5e_a_release_bump_previews_the_rollout_plan_and_the_steps_it_changes(
    session: Session,
) -> None:
    """Every Node reports the release its Ignition installed (the lab's kubelets, kwok's Nodes:
    FROM_RELEASE, the previous minor's). A bump to TO_RELEASE, the next minor, previews the
    plan, machine by machine in kubeadm's order, and the changes the mocks tests name
    (offline/test_upgrade_plan.py): each machine's upgrade step replaced (its triggers hold the
    release) and its Ignition, a Matchbox profile, replaced (every Matchbox attribute is
    ForceNew); no install step, so no machine is booted. The preview changes nothing, and the
    settings go back."""
    session.needs("2 up", "3b up (converge)")
    assert machines_of(session.stack_values()) == ["c1", "w1", "w2", "c2", "c3"]
    assert nodes(session.lab) == {m: (f"v{FROM_RELEASE}", False) for m in ROLLOUT}
    before = session.lab.matchbox()
    boots = len(session.boots())
    asks = upgrade_asks(session.lab)
    undo = set_kubernetes_version(session.work, STACK, TO_RELEASE)
    try:
        run = session.run(BUMP_PREVIEW, "preview")
    finally:
        stack_settings_file(session.work, STACK).write_text(undo)
    assert run.ok, run.explain()
    said = [d["message"].strip() for d in run.diagnostics("info")]
    assert PLAN in said, said
    session.notes["bump preview"] = run
    found = changed_resources(run)
    steps = {upgrade_step(m) for m in ROLLOUT}
    profiles = {(PROFILE, f"lab-{m}") for m in ROLLOUT}
    assert steps | profiles <= replaced(run), sorted(replaced(run))
    # A profile's replacement leaves its name unknown in a preview, so its group may show an
    # update of its `profile` with it (as test 3 found); nothing else changes.
    assert set(found) - {(GROUP, f"lab-{m}") for m in ROLLOUT} == steps | profiles, sorted(found)
    assert session.lab.matchbox()["files"] == before["files"]
    assert len(session.boots()) == boots and upgrade_asks(session.lab) == asks


def test_5f_a_machine_whose_upgrade_fails_stops_the_rollout_there(session: Session) -> None:
    """With c2's kubeadm upgrade made to fail (the lab's upgrade service answers `failed`, as
    the real one does), ``up`` of the bump fails at c2's upgrade step, whose error names the
    machine, its step and the error its upgrade ConfigMap gave. c1, before it, runs TO_RELEASE
    and is uncordoned; c2 stays cordoned at FROM_RELEASE; c3, w1 and w2, after it, were never
    asked and run FROM_RELEASE. No machine booted, and the API server still answers."""
    session.needs(BUMP_PREVIEW)
    boots = len(session.boots())
    record = len(session.lab.boots())
    asks = upgrade_asks(session.lab)
    assert session.lab.upgrade_fault(FAILING, FAULT) == {FAILING: FAULT}
    set_kubernetes_version(session.work, STACK, TO_RELEASE)
    run = session.run("5f up (bump; c2's upgrade fails)", "up")
    assert not run.ok, run.explain()
    error = f"kubeadm upgrade node failed: {FAULT}"
    assert (
        f"{FAILING}: step upgrade to {TO_RELEASE} failed on the machine: {error}." in run.output
    ), run.explain()
    assert f"lab-{FAILING}-upgrade" in run.result.get("error", ""), run.explain()
    failed = {urn_key(e["urn"]) for e in run.events if e["kind"] == "failed"}
    assert upgrade_step(FAILING) in failed, failed
    after = upgrade_asks(session.lab)
    assert after["c1"]["release"] == TO_RELEASE and after["c1"]["state"] == "done"
    assert (after[FAILING]["release"], after[FAILING]["state"]) == (TO_RELEASE, "failed")
    assert after[FAILING]["error"] == error
    for machine in ROLLOUT[2:]:
        assert after[machine] == asks[machine], f"{machine} was asked"
    assert nodes(session.lab) == {
        "c1": (f"v{TO_RELEASE}", False),
        FAILING: (f"v{FROM_RELEASE}", True),
        **{m: (f"v{FROM_RELEASE}", False) for m in ROLLOUT[2:]},
    }
    answered = [(a["machine"], a["state"]) for a in service_answers(session.lab, record)]
    assert answered == [
        ("c1", "downloading"),
        ("c1", "kubeadm upgrade apply"),
        ("c1", "restarting the kubelet"),
        ("c1", "done"),
        (FAILING, "downloading"),
        (FAILING, "kubeadm upgrade node"),
        (FAILING, "failed"),
    ], answered
    assert len(session.boots()) == boots
    assert session.lab.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    session.notes["rollout stopped"] = {"attempt c1": after["c1"]["attempt"], "record": record}
    session.notes["rollout seconds"] = {"5f": (run.seconds, step_seconds(run))}


def test_5g_the_next_up_resumes_where_it_stopped_one_machine_at_a_time(session: Session) -> None:
    """The fault cleared, ``up`` again (the same release: an unfinished upgrade to it is not
    refused) goes on from c2: c1, upgraded already, is not asked again; c2, c3, w1 and w2 are
    asked and upgraded one after the other, each only once the one before it is done; every
    Node then runs TO_RELEASE, uncordoned, and no machine booted."""
    stopped = session.notes.get("rollout stopped")
    if stopped is None:
        pytest.skip("an earlier step did not complete: 5f up (bump; c2's upgrade fails)")
    assert session.lab.upgrade_fault(FAILING, None) == {}
    boots = len(session.boots())
    record = len(session.lab.boots())
    run = session.run("5g up (the rollout resumed)", "up")
    assert run.ok, run.explain()
    # The failed up recorded no release (the output waits on every upgrade step), so this one
    # still knows the cluster at FROM_RELEASE and says the plan again.
    assert PLAN in run.output, run.explain()
    assert upgrade_asks(session.lab)["c1"]["attempt"] == stopped["attempt c1"]
    # c1's step for TO_RELEASE was made by the failed up and its inputs are the same: the
    # engine does not run it again. Its step for FROM_RELEASE, which the failed up kept for
    # deletion at its end, is deleted now (an upgrade step's delete runs nothing).
    c1 = next(urn for _, urn in run.steps if urn_key(urn) == upgrade_step("c1"))
    assert ("same", c1) in run.steps, run.steps
    assert changed_resources(run)[upgrade_step("c1")] == ["delete-replaced"]
    assert {upgrade_step(m) for m in ROLLOUT[1:]} <= set(changed_resources(run))
    answered = [(a["machine"], a["state"]) for a in service_answers(session.lab, record)]
    expected = [
        (machine, state)
        for machine in ROLLOUT[1:]
        for state in ("downloading", "kubeadm upgrade node", "restarting the kubelet", "done")
    ]
    assert answered == expected, answered
    # One machine at a time: each step started once the one before it had finished.
    spans = step_spans(run)
    assert sorted(spans) == sorted(ROLLOUT[1:]), spans
    for first, then in itertools.pairwise(ROLLOUT[1:]):
        assert spans[first][1] <= spans[then][0], (first, then, spans)
    for machine in ROLLOUT[1:]:
        assert f"upgrading {machine} from {FROM_RELEASE} to {TO_RELEASE}" in run.output
        assert f"{machine} upgraded from {FROM_RELEASE} to {TO_RELEASE}" in run.output
    assert nodes(session.lab) == {m: (f"v{TO_RELEASE}", False) for m in ROLLOUT}
    assert all(a["state"] == "done" for a in upgrade_asks(session.lab).values())
    assert len(session.boots()) == boots
    session.notes["rollout seconds"]["5g"] = (run.seconds, step_seconds(run))
    # For the benchmark: the engine's time of each up, and of each machine's upgrade step.
    figures = json.dumps(session.notes["rollout seconds"])
    print(f"\nupgrade rollout, seconds (each up's, then each machine's step): {figures}")


def test_5h_after_the_rollout_the_stack_previews_no_change(session: Session) -> None:
    """The stack now says TO_RELEASE, as every kubelet runs (later tests keep it so: a preview
    at FROM_RELEASE would be refused, no kubelet may be newer than the API server); a preview
    changes nothing and says no plan."""
    session.needs("5g up (the rollout resumed)")
    run = session.run("5h preview (after the rollout)", "preview")
    assert run.ok, run.explain()
    assert changed(run) == {}, changed_resources(run)
    assert not any("one machine at a time" in d["message"] for d in run.diagnostics())


def _resources(export: EngineRun) -> dict[str, Any]:
    """The exported state's resources by URN, but the stack's own (its outputs are the last
    completed update's either way), each secret as a marker: the passphrase provider encrypts
    every secret again, with a fresh nonce, whenever the engine saves the checkpoint."""
    assert export.ok, export.explain()
    state = json.loads(Path(export.result["export"]).read_text())
    return {
        r["urn"]: _secrets_masked(r)
        for r in state["deployment"]["resources"]
        if r["type"] != "pulumi:pulumi:Stack"
    }


def _secrets_masked(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return "<secret>"
        return {k: _secrets_masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secrets_masked(v) for v in value]
    return value


# --------------------------------------------------------------------------- 6. export


def _walk_secrets(value: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            found.append(value)
            return
        for item in value.values():
            _walk_secrets(item, found)
    elif isinstance(value, list):
        for item in value:
            _walk_secrets(item, found)


def test_6_the_exported_state_holds_no_secret_in_plain_text(session: Session) -> None:
    """``pulumi stack export`` (secrets not shown): every secret value is ciphertext, and no
    private key, token secret, certificate key, password hash or Matchbox client key is in it
    in plain text (nor base64-encoded)."""
    session.needs("2 up")
    run = session.run("6 stack export", "export")
    assert run.ok, run.explain()
    text = Path(run.result["export"]).read_text()
    found: list[dict[str, Any]] = []
    _walk_secrets(json.loads(text), found)
    assert found
    assert all(set(s) == {SIG_KEY, "ciphertext"} for s in found), [
        sorted(s) for s in found if set(s) != {SIG_KEY, "ciphertext"}
    ]
    assert "PRIVATE KEY" not in text and "plaintext" not in text
    tls = session.work / "tls"
    values = session.stack_values()
    plain: dict[str, str] = {"matchbox client key": (tls / "client.key").read_text().strip()}
    for name, secret in token_secrets(session.lab).items():
        plain[f"{name} token secret"] = secret["token-secret"]
    dump = session.lab.matchbox()
    for ignition_id, config in dump["ignition"].items():
        machine = machine_from_ignition(ignition_id.removesuffix(".ign"), config.encode())
        for path, entry in machine.files.items():
            if path.endswith(".key"):
                plain[f"{ignition_id} {path}"] = entry.contents.decode().strip()
        for user in machine.ignition.get("passwd", {}).get("users", []):
            if user.get("passwordHash"):
                plain[f"{ignition_id} password hash"] = user["passwordHash"]
        for document in yaml.safe_load_all(machine.files[KUBEADM_CONFIG].contents.decode()):
            key = ((document or {}).get("controlPlane") or {}).get("certificateKey")
            if key:
                plain[f"{ignition_id} certificate key"] = key
    assert any("password hash" in k for k in plain) and values["admin"].get("user")
    for what, value in plain.items():
        lines = [line for line in value.splitlines() if "-----" not in line] or [value]
        for needle in {*lines, base64.b64encode(value.encode()).decode()}:
            assert needle not in text, f"{what} in plain text in the exported state"


# --------------------------------------------------------------------------- 7. destroy


def test_7_destroy_removes_every_matchbox_object_and_token_secret(session: Session) -> None:
    """``destroy`` deletes what the program registered: Matchbox is empty (API and data path),
    no token Secret or release is left. Each machine's membership step runs remove-machine as
    it goes: the workers' and then the second controller's Nodes are drained and deleted, and
    the first controller, reached last and the only etcd member left, is left alone; no machine
    is booted, and the control plane still runs."""
    session.needs("2 up")
    nodes = session.lab.kubectl("get", "nodes", "-o", "name").stdout.split()
    boots = len(session.boots())
    run = session.run("7 destroy", "destroy")
    assert run.ok, run.explain()
    # Deletes, and the engine's discard of the reference to the stack itself.
    assert set(changed(run)) <= {"delete", "discard"}, run.changes
    macs = [normal_mac(m["mac"]) for m in session.stack_values()["machines"].values()]
    dump = session.lab.matchbox(macs)
    assert (dump["profiles"], dump["groups"], dump["ignition"], dump["files"]) == ([], [], {}, {})
    # Every machine's MAC asked of the HTTP API: nothing is served any more.
    assert sorted(dump["served"]) == sorted(macs)
    assert {mac: s["status"] for mac, s in dump["served"].items()} == dict.fromkeys(macs, 404)
    assert token_secrets(session.lab) == {}
    assert helm_releases(session.lab, session.work) == []
    values = session.stack_values()["machines"]
    first = next(name for name, m in values.items() if m["role"] == "controller")
    assert f"node/{first}" in nodes
    assert session.lab.kubectl("get", "nodes", "-o", "name").stdout.split() == [f"node/{first}"]
    assert len(session.boots()) == boots
    assert session.lab.status()["control_plane"]
    deleted = {urn_key(u) for op, u in run.steps if op == "delete"}
    for machine in machines_of(session.stack_values()):
        assert (PROFILE, f"lab-{machine}") in deleted and (GROUP, f"lab-{machine}") in deleted


def test_7b_destroy_says_what_it_did_and_did_not_do_to_the_machines(session: Session) -> None:
    session.needs("7 destroy")
    run = session.runs["7 destroy"]
    messages = [d["message"] for d in run.diagnostics() if d["urn"] and "Command" in d["urn"]]
    for machine in machines_of(session.stack_values()):
        assert any(machine in m for m in messages), f"nothing said about {machine}"
        assert any(f"not done to {machine}: its disk is not wiped" in m for m in messages)


# --------------------------------------------------------------------------- 8. refused


def test_8_reinstalling_the_only_controller_is_refused_at_preview(session: Session) -> None:
    """A single-controller stack (the example's, in the same lab and backend) previews; its
    controller's generation bump fails at preview with the program's message and changes
    nothing: the stack holds no resource, Matchbox and the machines are as they were."""
    values = for_the_solo_stack(session)
    write_stack_file(session.work / f"Pulumi.{SOLO}.yaml", values)
    first = session.run("8 preview (single controller)", "preview", stack=SOLO)
    assert first.ok, first.explain()
    before = session.lab.matchbox()
    boots = len(session.boots())
    run = session.run("8 preview (bump the only controller)", "preview-bump", "c1", stack=SOLO)
    assert not run.ok
    assert "machine 'c1': field 'generation'" in run.output
    assert "only controller" in run.output and "allowClusterRebuild" in run.output
    # Nothing got as far as a step but the stack's own.
    assert {urn_key(u)[0] for _, u in run.steps} <= {"pulumi:pulumi:Stack"}, run.steps
    after = session.lab.matchbox()
    assert after["files"] == before["files"] and len(session.boots()) == boots
    export = session.run("8 export (single controller)", "export", stack=SOLO)
    state = json.loads(Path(export.result["export"]).read_text())
    assert not state["deployment"].get("resources"), "the refused stack holds resources"


def for_the_solo_stack(session: Session) -> dict[str, Any]:
    values, _ = _example()
    return values


def _example() -> tuple[dict[str, Any], list[str]]:
    from repo_paths import EXAMPLE_STACK_FILE

    from stackconfig.stackfile import read_stack_values

    values, secure = read_stack_values(EXAMPLE_STACK_FILE)
    return values, list(secure)
