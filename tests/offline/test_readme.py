"""The documentation's sample outputs are what the commands print, and its stack config
reference covers every field.

Each sample, in README.md or a page under docs/, follows a marker line `<!-- sample: NAME -->`
and is one fenced block; `SAMPLES[NAME]` runs the command it shows (the `stubernetes` command,
or the install steps' and gates' scripts against stand-in tools) and returns what it printed.
A block may elide lines with a line `...`. After a change that alters a sample, rewrite them
all with

    .venv/bin/python tests/offline/test_readme.py --update
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from repo_paths import EXAMPLE_STACK_FILE, REPO
from test_gate_script import run_gate

from stackconfig import load_stack_file
from stackconfig.backups import Backups, S3Bucket
from stackconfig.model import (
    Admin,
    Bmc,
    Cluster,
    Gates,
    Machine,
    Matchbox,
    OperatingSystem,
    ReleaseSettings,
    Taint,
)
from stackconfig.os_flavor import FLAVOR_FIELDS
from stackconfig.vip import Vip

README = REPO / "README.md"
DOCS = REPO / "docs"
# The stack config reference page (docs/reference/stack.md): one `## ` section per table.
STACK_REFERENCE = DOCS / "reference" / "stack.md"
COMMAND = Path(sys.executable).parent / "stubernetes"
MARKER = re.compile(r"<!-- sample: (?P<name>[a-z0-9-]+) -->\n```[a-z]*\n(?P<body>.*?)\n```", re.S)
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
ELISION = "..."


def workspace() -> Path:
    """A scratch copy of what the documented commands read, run from as if it were the clone."""
    root = Path(tempfile.mkdtemp(prefix="stubernetes-readme-"))
    (root / "stacks").mkdir()
    shutil.copy2(EXAMPLE_STACK_FILE, root / "stacks" / EXAMPLE_STACK_FILE.name)
    return root


def stubernetes(cwd: Path, *args: str, stream: str = "stdout") -> str:
    result = subprocess.run(
        [str(COMMAND), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )
    text: str = getattr(result, stream)
    return text.rstrip("\n")


def home_stack(root: Path, **os_fields: object) -> str:
    """stacks/Pulumi.home.yaml: the example, as a user's own stack would start."""
    document = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    document["config"]["stubernetes:os"].update(os_fields)
    (root / "stacks/Pulumi.home.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return "stacks/Pulumi.home.yaml"


def sample_setup(root: Path) -> str:
    return stubernetes(
        root, "render", "--stack-file", "stacks/Pulumi.example.yaml", "--out", "build/example"
    )


def sample_check(root: Path) -> str:
    return stubernetes(root, "check", "--stack-file", "stacks/Pulumi.example.yaml")


def sample_preview(root: Path) -> str:
    out = stubernetes(root, "check", "--stack-file", "stacks/Pulumi.example.yaml", "--resources")
    return out.split("\n\n", 1)[1]


def sample_bad_input(root: Path) -> str:
    document = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    config = document["config"]
    config["stubernetes:admin"]["sshAuthorizedKeys"] = []
    config["stubernetes:machines"]["w1"]["mac"] = "nope"
    config["stubernetes:machines"]["w2"]["installDisk"] = "nvme0n1"
    (root / "stacks/Pulumi.bad.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return stubernetes(root, "check", "--stack-file", "stacks/Pulumi.bad.yaml", stream="stderr")


def sample_upgrade(root: Path) -> str:
    """The example rendered at the previous minor, then as it is into the same folder."""
    document = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    document["config"]["stubernetes:cluster"]["kubernetesVersion"] = "1.35.8"
    (root / "stacks/Pulumi.older.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    stubernetes(
        root, "render", "--stack-file", "stacks/Pulumi.older.yaml", "--out", "build/example"
    )
    return sample_setup(root)


def sample_summary(root: Path) -> str:
    sample_setup(root)
    return (root / "build/example/machines/c1/summary.txt").read_text().rstrip("\n")


def sample_urn(root: Path) -> str:
    return stubernetes(root, "urn", "--stack-file", home_stack(root), "--machine", "w1")


def sample_assets(root: Path) -> str:
    return stubernetes(root, "assets", "--stack-file", home_stack(root, cachedInstall=True))


def sample_certs(root: Path) -> str:
    return stubernetes(
        root, "matchbox-certs", "--out", "matchbox-certs", "--server", "matchbox.lab.home.arpa"
    )


def _script(name: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(REPO / "components/scripts" / name)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.rstrip("\n")


def sample_up(root: Path) -> str:
    """What the steps of a first `pulumi up` print for one machine, then the gates: the real
    scripts, against a stand-in kubectl that plays a cluster coming up."""
    lines = [
        _script("network-boot-once", {"MACHINE": "w2", "BOOT_METHOD": "manual"}),
        _script("wait-for-rejoin", {"MACHINE": "w2", "CLEAN_OUTPUT": "first-install"}),
    ]
    states = {
        "api": ["unreachable", "c1 False\n"],
        "registered": ["c1 False\n", "c1 False\nw1 False\nw2 False\n"],
        "ready": ["c1 True\nw1 False\nw2 False\n", "c1 True\nw1 True\nw2 True\n"],
    }
    for condition, polls in states.items():
        gate = root / f"gate-{condition}"
        gate.mkdir()
        nodes = "" if condition == "api" else "c1 w1 w2"
        result = run_gate(gate, condition, nodes, polls, timeout=30)
        assert result.returncode == 0, result.stderr
        lines.append(result.stdout.rstrip("\n"))
    return "\n".join(lines)


def sample_waits(root: Path) -> str:
    """Gate 1 while the machines report their setup (w1's join refused until its token is in
    the cluster, w2 unpacking its CNI plugins), then gate 2 timing out on a machine whose setup is
    done but whose Node is not Ready: the real script, against the stand-in kubectl of
    test_gate_script.py, which answers the reports' ConfigMaps as kubectl prints them."""
    jws = (
        "phase kubeadm exited 1: error execution phase preflight: couldn't validate the "
        "identity of the API Server: could not find a JWS signature in the cluster-info "
        'ConfigMap for token ID "k3v9qa"'
    )
    c1 = "stubernetes-status-c1|done|done|0|2026-12-02T14:02:41Z|\n"
    reports = [
        c1
        + f"stubernetes-status-w1|kubeadm|retrying|1|2026-12-02T14:03:05Z|{jws}\n"
        + "stubernetes-status-w2|node|running|0|2026-12-02T14:02:58Z|\n",
        c1
        + f"stubernetes-status-w1|kubeadm|running|1|2026-12-02T14:03:10Z|{jws}\n"
        + "stubernetes-status-w2|kubeadm|running|0|2026-12-02T14:04:30Z|\n",
    ]
    registered = root / "gate-registered"
    registered.mkdir()
    result = run_gate(
        registered,
        "registered",
        "c1 w1 w2",
        ["c1 False\n", "c1 False\nw2 False\n", "c1 False\nw1 False\nw2 False\n"],
        timeout=30,
        reports=reports,
    )
    assert result.returncode == 0, result.stderr
    lines = [result.stdout.rstrip("\n")]
    ready = root / "gate-ready"
    ready.mkdir()
    done = c1 + "stubernetes-status-w2|done|done|0|2026-12-02T14:06:12Z|\n"
    # Exactly one poll before the timeout, however loaded the machine: bash's SECONDS counts
    # whole seconds of the clock (it can turn within a moment of the start), so the first poll
    # is inside a 3 s timeout unless it takes 2 s, and the next comes 4 s later, past it.
    result = run_gate(
        ready,
        "ready",
        "c1 w1 w2",
        ["c1 True\nw1 True\nw2 False\n"],
        timeout=3,
        reports=[done],
        poll=4,
    )
    assert result.returncode == 1
    lines += [result.stdout.rstrip("\n"), result.stderr.rstrip("\n")]
    return "\n".join(lines)


SAMPLES: dict[str, Callable[[Path], str]] = {
    "setup": sample_setup,
    "check": sample_check,
    "preview": sample_preview,
    "bad-input": sample_bad_input,
    "upgrade": sample_upgrade,
    "summary": sample_summary,
    "urn": sample_urn,
    "assets": sample_assets,
    "matchbox-certs": sample_certs,
    "up": sample_up,
    "waits": sample_waits,
}


def documentation() -> list[Path]:
    """README.md and every page of the site, where the samples live."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def samples(text: str) -> dict[str, str]:
    found = {m["name"]: m["body"] for m in MARKER.finditer(text)}
    assert len(found) == len(MARKER.findall(text)), "a sample name is used twice"
    return found


def every_sample() -> dict[str, str]:
    """Every sample of the documentation by name, each name used once in all of it."""
    found: dict[str, str] = {}
    for path in documentation():
        for name, body in samples(path.read_text()).items():
            assert name not in found, f"sample '{name}' is used twice ({path})"
            found[name] = body
    return found


def matches(shown: str, printed: str) -> bool:
    """Whether the documentation's block is what was printed, lines `...` standing for any run of
    lines, dates for any date."""
    shown, printed = DATE.sub("YYYY-MM-DD", shown), DATE.sub("YYYY-MM-DD", printed)
    parts = [part.strip("\n") for part in f"\n{shown}\n".split(f"\n{ELISION}\n")]
    if len(parts) == 1:
        return shown == printed
    lines = printed.splitlines()
    position = 0
    for index, part in enumerate(parts):
        chunk = part.splitlines()
        if not chunk:
            continue
        if index == 0:
            if lines[: len(chunk)] != chunk:
                return False
            position = len(chunk)
            continue
        last = index == len(parts) - 1
        for start in range(position, len(lines) - len(chunk) + 1):
            if lines[start : start + len(chunk)] == chunk and (
                not last or start + len(chunk) == len(lines)
            ):
                position = start + len(chunk)
                break
        else:
            return False
    return True


def excerpt(shown: str, printed: str) -> str:
    """The printed text, elided where the documentation's block elides (for --update): lines aligned
    with the block's are kept, runs that stand where the block has `...` are elided again, and
    new or changed lines elsewhere are kept."""
    old = shown.splitlines()
    if ELISION not in old:
        return printed
    new = printed.splitlines()
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            out += new[b1:b2]
        elif b2 > b1:
            if ELISION in old[a1:a2] and all(line == ELISION for line in old[a1:a2]):
                out.append(ELISION)
            else:
                out += new[b1:b2]
        elif ELISION in old[a1:a2] and (not out or out[-1] != ELISION):
            out.append(ELISION)
    return "\n".join(out)


@pytest.fixture(scope="module")
def shown_samples() -> dict[str, str]:
    return every_sample()


def test_every_sample_has_its_command() -> None:
    assert set(every_sample()) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_is_what_the_command_prints(name: str, shown_samples: dict[str, str]) -> None:
    root = workspace()
    try:
        printed = SAMPLES[name](root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert matches(shown_samples[name], printed), (
        f"documentation sample '{name}' differs from what its command prints now; "
        f"run `.venv/bin/python tests/offline/test_readme.py --update`. Printed:\n{printed}"
    )


# ------------------------------------------------------------------ the stack config reference

SECTIONS: dict[str, type[BaseModel]] = {
    "stubernetes:cluster": Cluster,
    "stubernetes:os": OperatingSystem,
    "stubernetes:matchbox": Matchbox,
    "stubernetes:admin": Admin,
    "stubernetes:gates": Gates,
    "stubernetes:machines": Machine,
    "taints": Taint,
    "bmc": Bmc,
    "stubernetes:releases": ReleaseSettings,
    "stubernetes:vip": Vip,
    "stubernetes:backups": Backups,
    "s3": S3Bucket,
}


def reference() -> str:
    text = STACK_REFERENCE.read_text()
    assert text.startswith("# The stack config\n"), STACK_REFERENCE
    return text


def aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items() if name != "name"]


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_the_reference_names_every_field(section: str) -> None:
    """Every field of the model has a row `| `field` | ...` in its section's table."""
    text = reference()
    heading = f"\n## `{section}`\n"
    assert heading in text, heading
    body = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1) for m in re.finditer(r"^\| `([A-Za-z0-9.]+)` \|", body, re.M)}
    assert set(aliases(SECTIONS[section])) <= rows, section


def complete_example() -> str:
    text = reference()
    match = re.search(r"<!-- complete-stack -->\n```yaml\n(.*?)\n```", text, re.S)
    assert match, "the reference's complete stack example"
    return match.group(1)


def every_key(value: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(str(key))
            keys |= every_key(item)
    elif isinstance(value, list):
        for item in value:
            keys |= every_key(item)
    return keys


def test_the_complete_example_is_a_valid_stack_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.complete.yaml"
    path.write_text(complete_example())
    loaded = load_stack_file(path)
    assert len(loaded.config.machines) >= 3
    used = every_key(yaml.safe_load(complete_example()))
    # A stack has one flavor: the fields of the other one are refused in it.
    other_flavor = {
        field for field, (owner, _) in FLAVOR_FIELDS.items() if owner != "fedora-coreos"
    }
    for model in SECTIONS.values():
        assert set(aliases(model)) - other_flavor <= used, model.__name__
    result = subprocess.run(
        [str(COMMAND), "check", "--stack-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def update() -> None:
    shown = every_sample()

    def replace(match: re.Match[str]) -> str:
        root = workspace()
        try:
            printed = SAMPLES[match["name"]](root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        body = excerpt(shown[match["name"]], printed)
        fence = match.group(0).split("\n", 2)[1]
        return f"<!-- sample: {match['name']} -->\n{fence}\n{body}\n```"

    for path in documentation():
        text = path.read_text()
        if MARKER.search(text):
            path.write_text(MARKER.sub(replace, text))


def test_the_readmes_component_table_is_the_pins_table() -> None:
    """The README's table of what the program installs is exactly what
    `python -m stackconfig.component_pins` prints from the pins the code uses."""
    printed = subprocess.run(
        [sys.executable, "-m", "stackconfig.component_pins"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.rstrip("\n")
    text = README.read_text()
    shown = text.split("<!-- component-pins -->\n", 1)[1].split("\n<!-- end of component-pins -->")[
        0
    ]
    assert shown == printed


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
    else:
        sys.exit("usage: tests/offline/test_readme.py --update")
