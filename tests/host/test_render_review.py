"""`stubernetes render` for review: each machine's files at their paths, its units and presets,
a summary, numbers as numbers, and only the secret parts of a value redacted.

The per-machine tree is compared with what the real Ignition binary writes from the same
rendered config (`ignition_root.apply_ignition`), snippets merged by Ignition itself."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from ignition_root import BASE_FILES, apply_ignition
from repo_paths import EXAMPLE_STACK_FILE

from stubernetes.cli import main

pytest_plugins = ["sim_fixtures"]

# What the Ignition binary writes besides the config's own files: its bookkeeping, the
# account databases it edits (and their backups), and the scratch root's skeleton.
IGNITION_OWN = {
    "etc/.ignition-result.json",
    "etc/.pwd.lock",
    *BASE_FILES,
    *(f"{path}-" for path in ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow")),
}
LISTING = re.compile(r"^  (?P<mode>[0-7]{4}|    ) (?:(?P<kind>directory|link) )?(?P<path>/\S+)")
FETCHED = re.compile(
    r"^  [0-7]{4} (?P<path>/\S+)  \[fetched at first boot from (?P<url>\S+), refused unless its "
    r"digest is sha256-(?P<digest>[0-9a-f]{64})\]$",
    re.MULTILINE,
)


def stack_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE_STACK_FILE.read_text())
    return document


@pytest.fixture
def served_document(served_values: dict[str, Any]) -> dict[str, Any]:
    """The example stack file, its nodes fetching their binaries from the test's Matchbox
    (sim_downloads.py): Ignition fetches every remote file when it applies a config."""
    document = stack_document()
    config = document["config"]
    config["stubernetes:cluster"]["binarySha256"] = served_values["cluster"]["binarySha256"]
    config["stubernetes:os"]["cachedInstall"] = True
    config["stubernetes:matchbox"]["httpEndpoint"] = served_values["matchbox"]["httpEndpoint"]
    return document


def write_stack(tmp_path: Path, document: dict[str, Any], name: str = "review") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def render(stack_file: Path, out: Path, capsys: pytest.CaptureFixture[str] | None = None) -> str:
    status = main(["render", "--stack-file", str(stack_file), "--out", str(out)])
    printed = capsys.readouterr() if capsys is not None else None
    assert status == 0, printed
    return printed.out if printed else ""


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def listing(summary: str) -> dict[str, tuple[str, str]]:
    """The summary's files section: path -> (mode, kind)."""
    section = summary.split("files (mode, path):\n", 1)[1].split("\nsecret", 1)[0]
    found = {}
    for line in section.splitlines():
        match = LISTING.match(line)
        assert match, line
        found[match["path"]] = (match["mode"].strip(), match["kind"] or "file")
    return found


def applied(ignition: bytes, tmp_path: Path, name: str) -> Path:
    root = tmp_path / f"applied-{name}"
    apply_ignition(ignition, root, tmp_path / f"work-{name}")
    return root


def applied_files(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*"):
        relative = str(path.relative_to(root))
        if relative in IGNITION_OWN or (path.is_dir() and not path.is_symlink()):
            continue
        found[relative] = path
    return found


def assert_tree_matches_ignition(out: Path, machine: str, object_id: str, tmp_path: Path) -> str:
    """The render's machines/<machine>/ is what Ignition writes: the same regular files with
    the same bytes, every file, directory and link listed in summary.txt with Ignition's mode."""
    ignition = (out / "matchbox/ignition" / f"{object_id}.ign").read_bytes()
    root = applied(ignition, tmp_path, machine)
    review = out / "machines" / machine
    summary = (review / "summary.txt").read_text()
    rendered = {k: v for k, v in tree(review).items() if k != "summary.txt"}
    real = applied_files(root)
    regular = {k: p.read_bytes() for k, p in real.items() if not p.is_symlink()}
    # Ignition v2.24 writes the preset file sorted by unit name (coreos/ignition
    # internal/exec/stages/files/units.go, createSystemdPresetFile), as the review does: the
    # preset is compared byte for byte with the rest.
    # What Ignition fetched is not in the review, which names where from and its digest: the
    # digest of what Ignition wrote.
    fetched = {entry["path"].lstrip("/"): entry["digest"] for entry in FETCHED.finditer(summary)}
    assert fetched, summary
    for relative, digest in fetched.items():
        assert relative not in rendered, relative
        assert hashlib.sha256(regular[relative]).hexdigest() == digest, relative
    assert rendered == {k: v for k, v in regular.items() if k not in fetched}
    listed = listing(summary)
    links = {k for k, p in real.items() if p.is_symlink()}
    directories = {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and not p.is_symlink()
    }
    for path, (mode, kind) in listed.items():
        relative = path.lstrip("/")
        if kind == "link":
            assert relative in links, path
            continue
        if kind == "directory":
            assert relative in directories, path
        else:
            assert relative in regular, path
        assert stat.S_IMODE((root / relative).stat().st_mode) == int(mode, 8), path
    assert {p.lstrip("/") for p, (_, kind) in listed.items() if kind != "directory"} == set(real)
    return summary


def test_each_machine_tree_is_what_ignition_writes(
    tmp_path: Path, served_document: dict[str, Any]
) -> None:
    out = tmp_path / "out"
    render(write_stack(tmp_path, served_document), out)
    assert sorted(p.name for p in (out / "machines").iterdir()) == ["c1", "w1", "w2"]
    for machine in ("c1", "w1", "w2"):
        assert_tree_matches_ignition(out, machine, f"lab-{machine}", tmp_path)
    # Every machine enables the runtime the image ships, the kubelet, the setup service, and
    # the path unit and the timer of its status report; a controller also its certificate-
    # renewal timer. In unit name order. (Other features enable units of their own.)
    everywhere = {
        "enable containerd.service",
        "enable kubelet.service",
        "enable stubernetes-setup.service",
        "enable stubernetes-status-report.path",
        "enable stubernetes-status-report.timer",
    }
    for machine in ("c1", "w1"):
        preset = out / f"machines/{machine}/etc/systemd/system-preset/20-ignition.preset"
        lines = preset.read_text().splitlines()
        assert lines == sorted(lines), machine
        assert everywhere <= set(lines), machine
        assert ("enable stubernetes-cert-renewal.timer" in lines) == (machine == "c1")


SNIPPETS = [
    {
        "storage": {
            "files": [
                {
                    "path": "/etc/motd.d/hello",
                    "mode": 0o600,
                    "contents": {"source": "data:,hello%20there%0A"},
                },
                {
                    "path": "/etc/example/zipped.conf",
                    "contents": {
                        "compression": "gzip",
                        "source": "data:;base64,"
                        + base64.b64encode(gzip.compress(b"zipped = true\n", mtime=0)).decode(),
                    },
                },
            ],
            "directories": [{"path": "/var/lib/example", "mode": 0o750}],
            "links": [{"path": "/etc/example/link.conf", "target": "zipped.conf"}],
        }
    },
    {
        "systemd": {
            "units": [
                {
                    "name": "example.service",
                    "enabled": True,
                    "contents": "[Unit]\nDescription=example\n[Service]\nType=oneshot\n"
                    "ExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n",
                },
                {"name": "example-masked.service", "mask": True},
                {
                    "name": "stubernetes-setup.service",
                    "dropins": [{"name": "10-example.conf", "contents": "[Service]\nNice=5\n"}],
                },
            ]
        }
    },
]


def test_snippets_merge_as_ignition_merges_them(
    tmp_path: Path, served_document: dict[str, Any]
) -> None:
    document = served_document
    machines = document["config"]["stubernetes:machines"]
    machines["w1"]["snippets"] = copy.deepcopy(SNIPPETS)
    machines["w1"]["kernelArgs"] = ["console=ttyS0,115200n8"]
    machines["w1"]["installerKernelArgs"] = ["console=ttyS1"]
    out = tmp_path / "out"
    render(write_stack(tmp_path, document), out)
    summary = assert_tree_matches_ignition(out, "w1", "lab-w1", tmp_path)
    review = out / "machines/w1"
    assert (review / "etc/motd.d/hello").read_text() == "hello there\n"
    assert (review / "etc/example/zipped.conf").read_text() == "zipped = true\n"
    assert (review / "etc/systemd/system/stubernetes-setup.service.d/10-example.conf").exists()
    preset = (review / "etc/systemd/system-preset/20-ignition.preset").read_text().splitlines()
    assert preset == sorted(preset)
    assert {"enable example.service", "enable stubernetes-setup.service"} <= set(preset)
    listed = listing(summary)
    assert listed["/var/lib/example"] == ("0750", "directory")
    assert listed["/etc/motd.d/hello"] == ("0600", "file")
    assert listed["/etc/example/link.conf"] == ("", "link")
    assert "/etc/systemd/system/example-masked.service" in listed
    assert "  example-masked.service: masked" in summary.splitlines()
    assert "  + console=ttyS0,115200n8" in summary.splitlines()
    assert "    console=ttyS1" in summary.splitlines()


def test_summary_of_the_init_controller(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(EXAMPLE_STACK_FILE, out)
    summary = (out / "machines/c1/summary.txt").read_text()
    lines = summary.splitlines()
    assert lines[0] == "machine c1: controller (init), MAC 52:54:00:a1:00:01"
    assert lines[1].startswith("kubeadm: init --config /etc/stubernetes/kubeadm.yaml (")
    assert "InitConfiguration, ClusterConfiguration" in lines[1]
    assert "or join --config /etc/stubernetes/kubeadm-join.yaml" in lines[2]
    assert (
        "install: Fedora CoreOS 44.20260817.3.2 (stable) to /dev/disk/by-path/pci-0000:00:04.0"
        in lines
    )
    assert "user core-admin: groups wheel sudo; 1 SSH key(s); no password" in lines
    assert "  stubernetes-setup.service: enabled" in lines
    assert "  0440 /etc/sudoers.d/stubernetes-admin" in lines
    secret = summary.split("secret (by name; stand-ins in this render):\n", 1)[1].splitlines()
    assert "  /etc/stubernetes/pki/ca.key: lab-ca.privateKeyPem" in secret
    assert "  /etc/stubernetes/pki/sa.key: lab-service-accounts.privateKeyPem" in secret
    assert "  /etc/stubernetes/kubeadm-join.yaml: lab-c1-token-secret.result" in secret
    # Certificates are public: not listed as secrets.
    assert not any("ca.crt" in line for line in secret)
    # A worker receives its own token and no key material.
    worker = (out / "machines/w1/summary.txt").read_text()
    worker_secret = worker.split("stand-ins in this render):\n", 1)[1].splitlines()
    assert worker_secret == ["  /etc/stubernetes/kubeadm.yaml: lab-w1-token-secret.result"]


def secret_values(out: Path) -> set[str]:
    """The stand-in secrets as the machines received them: keys and tokens."""
    values = set()
    for key in (out / "machines/c1/etc/stubernetes/pki").rglob("*.key"):
        values.add(key.read_text().strip())
    for config in (out / "machines").rglob("kubeadm*.yaml"):
        values |= set(re.findall(r"[a-z0-9]{6}\.([a-z0-9]{16})", config.read_text()))
    return values


def test_summaries_name_secrets_and_never_hold_one(tmp_path: Path) -> None:
    document = stack_document()
    document["config"]["stubernetes:admin"]["passwordHash"] = {"secure": "v1:placeholder"}
    out = tmp_path / "out"
    render(write_stack(tmp_path, document), out)
    summary = (out / "machines/w2/summary.txt").read_text()
    assert "user core-admin: groups wheel sudo; 1 SSH key(s); a password hash" in summary
    assert "  user core-admin: stubernetes:admin.passwordHash" in summary.splitlines()
    values = secret_values(out)
    assert len(values) >= 7
    for machine in ("c1", "w1", "w2"):
        text = (out / f"machines/{machine}/summary.txt").read_text()
        assert not [v for v in values if v in text], machine
        assert "stand-in-for-secure-value" not in text


def floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats(v)]
    return []


def test_numbers_stay_numbers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(EXAMPLE_STACK_FILE, out)
    text = (out / "releases/household-dns.yaml").read_text()
    dns = yaml.safe_load(text)["values"]
    assert dns["replicas"] == 2
    for path in (out / "releases").iterdir():
        assert floats(yaml.safe_load(path.read_text())) == [], path
    resources = json.loads((out / "resources.json").read_text())
    assert floats(resources) == []
    steps = [r for r in resources if r["name"] == "lab-w1-rejoin"]
    assert steps[0]["inputs"]["triggers"] == [1]


def test_only_the_secret_parts_of_a_value_are_redacted(tmp_path: Path) -> None:
    document = stack_document()
    document["config"]["stubernetes:machines"]["w1"]["bmc"] = {
        "kind": "ipmi",
        "address": "10.0.0.21",
        "user": "admin",
        "password": {"secure": "v1:placeholder-bmc-password"},
    }
    out = tmp_path / "out"
    render(write_stack(tmp_path, document), out)
    text = (out / "resources.json").read_text()
    resources = {r["name"]: r for r in json.loads(text)}
    boot = resources["lab-w1-network-boot"]["inputs"]["environment"]
    assert boot["BMC_ADDRESS"] == "10.0.0.21"
    assert boot["BMC_USER"] == "admin"
    assert boot["BOOT_METHOD"] == "ipmi"
    assert set(boot["BMC_PASSWORD"]) == {"secret"}
    clean = resources["lab-w1-clean"]["inputs"]["environment"]
    assert clean["MACHINE"] == "w1" and clean["DRAIN_TIMEOUT_SECONDS"] == "600"
    assert set(clean["KUBECONFIG_CONTENT"]) == {"secret"}
    # pulumi_kubernetes marks a Secret's whole stringData secret itself; its name stays plain.
    token = resources["lab-w1-bootstrap-token"]["inputs"]
    assert set(token["stringData"]) == {"secret"}
    assert token["metadata"]["name"].startswith("bootstrap-token-")
    (profile,) = [
        r
        for r in json.loads(text)
        if r["type"] == "matchbox:index/profile:Profile" and r["name"] == "lab-w1"
    ]
    assert set(profile["inputs"]["rawIgnition"]) == {"secret"}
    assert profile["inputs"]["name"] == "lab-w1"
    # No secret leaks anywhere in what the render writes outside the machines' own files.
    values = secret_values(out) | {"stand-in-for-secure-value"}
    for path in [out / "resources.json", *(out / "releases").iterdir()]:
        written = path.read_text()
        assert not [v for v in values if v in written], path


def test_a_one_field_change_is_a_small_diff(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    render(EXAMPLE_STACK_FILE, before)
    document = stack_document()
    document["config"]["stubernetes:machines"]["w1"]["labels"] = {"stubernetes.dev/storage": "ssd"}
    render(write_stack(tmp_path, document), after)
    old, new = tree(before), tree(after)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    assert changed == [
        "machines/w1/etc/stubernetes/kubeadm.yaml",
        "matchbox/ignition/lab-w1.ign",
        "resources.json",
    ]
    for path in ("machines/w1/etc/stubernetes/kubeadm.yaml", "resources.json"):
        a, b = old[path].decode().splitlines(), new[path].decode().splitlines()
        assert len(a) == len(b)
        assert sum(x != y for x, y in zip(a, b, strict=True)) == 1, path
