"""`stubernetes render`: Matchbox's Ignition file names, validated, deterministic."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from control_plane.program_output import ignition_files
from repo_paths import EXAMPLE_STACK_FILE, REPO

from ignition.material import ca_cert_hash
from stubernetes.cli import main


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def render(out: Path, *extra: str) -> None:
    assert main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(out), *extra]) == 0


def test_render_writes_one_validated_ignition_per_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    render(tmp_path / "out")
    printed = capsys.readouterr().out.splitlines()
    ignition = tmp_path / "out/matchbox/ignition"
    assert sorted(p.name for p in ignition.iterdir()) == ["lab-c1.ign", "lab-w1.ign", "lab-w2.ign"]
    for path in ignition.iterdir():
        assert json.loads(path.read_bytes())["ignition"]["version"] == "3.3.0"
    assert printed[0].split() == ["MACHINE", "ROLE", "MAC", "IGNITION"]
    rows = [line.split() for line in printed[1:4]]
    assert [row[0] for row in rows] == ["c1", "w1", "w2"]
    assert rows[0][1:3] == ["controller", "(init)"]
    # The MAC as Matchbox stores it, whatever the stack file's spelling (w2 uses dashes).
    assert rows[2][2] == "52:54:00:a1:00:03"
    size = (ignition / "lab-w2.ign").stat().st_size
    assert rows[2][3:] == [f"{size:,}", "B"]
    assert any("never deploy" in line for line in printed)
    assert any(line.startswith("wrote ") and "/machines, " in line for line in printed)
    assert sorted(p.name for p in (tmp_path / "out/machines").iterdir()) == ["c1", "w1", "w2"]
    assert any("stand-in for secure value: stubernetes:matchbox.clientKey" in x for x in printed)


def test_render_writes_matchbox_data_path_layout(tmp_path: Path) -> None:
    render(tmp_path / "out")
    matchbox = tmp_path / "out/matchbox"
    for machine, mac in (("c1", "52:54:00:a1:00:01"), ("w2", "52:54:00:a1:00:03")):
        object_id = f"lab-{machine}"
        profile = json.loads((matchbox / f"profiles/{object_id}.json").read_text())
        assert set(profile) == {"id", "name", "boot", "ignition_id"}
        assert set(profile["boot"]) == {"kernel", "initrd", "args"}
        assert profile["ignition_id"] == f"{object_id}.ign"
        assert (matchbox / "ignition" / profile["ignition_id"]).is_file()
        assert profile["boot"]["initrd"][0].startswith("--name main ")
        assert "initrd=main" in profile["boot"]["args"]
        group = json.loads((matchbox / f"groups/{object_id}.json").read_text())
        assert group["profile"] == object_id
        assert group["selector"] == {"mac": mac}
    releases = {
        p.stem: yaml.safe_load(p.read_text()) for p in (tmp_path / "out/releases").iterdir()
    }
    assert releases["stubernetes-core"]["waitsFor"] == ["lab-registered"]
    assert releases["openebs"]["waitsFor"] == ["lab-ready"]
    assert releases["household-dns"]["values"]["hosts"] == [
        {"name": "c1", "address": "192.168.10.11"},
        {"name": "w1", "address": "192.168.10.21"},
    ]


def test_rendered_material_is_self_consistent(tmp_path: Path) -> None:
    """A join config's CA hash is the hash of the CA that the controllers carry."""
    render(tmp_path / "out")
    ignition = tmp_path / "out/matchbox/ignition"
    controller = json.loads((ignition / "lab-c1.ign").read_bytes())
    ca_cert = file_contents(controller, "/etc/stubernetes/pki/ca.crt")
    worker = json.loads((ignition / "lab-w1.ign").read_bytes())
    join = yaml.safe_load_all(file_contents(worker, "/etc/stubernetes/kubeadm.yaml"))
    discovery = next(d for d in join if d["kind"] == "JoinConfiguration")["discovery"]
    assert discovery["bootstrapToken"]["caCertHashes"] == [ca_cert_hash(ca_cert)]
    assert discovery["bootstrapToken"]["apiServerEndpoint"] == "192.168.10.11:6443"
    # Zincati asks the fleet-lock server at the Service IP that the core release fixes.
    core = yaml.safe_load((tmp_path / "out/releases/stubernetes-core.yaml").read_text())
    zincati = file_contents(worker, "/etc/zincati/config.d/55-stubernetes-fleetlock.toml")
    assert f'base_url = "http://{core["values"]["fleetlock"]["clusterIP"]}/"' in zincati


def file_contents(config: dict[str, Any], path: str) -> str:
    (entry,) = [f for f in config["storage"]["files"] if f["path"] == path]
    return base64.b64decode(entry["contents"]["source"].split(",", 1)[1]).decode()


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    render(tmp_path / "a")
    render(tmp_path / "b")
    render(tmp_path / "c", "--seed", "other")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert tree(tmp_path / "a") != tree(tmp_path / "c")


def test_separate_processes_with_different_hash_seeds_agree(tmp_path: Path) -> None:
    for name, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "stubernetes.cli",
                "render",
                "--stack-file",
                str(EXAMPLE_STACK_FILE),
                "--out",
                str(tmp_path / name),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
            capture_output=True,
        )
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_render_refuses_to_replace_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    status = main(["render", "--stack-file", str(EXAMPLE_STACK_FILE), "--out", str(precious)])
    assert status == 1
    assert "not an earlier render" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


def _ignition_files(path: Path) -> dict[str, bytes]:
    return {p: f.contents for p, f in ignition_files(json.loads(path.read_bytes())).items()}


def test_render_cluster_exists_shows_the_second_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cluster-exists`: what the program serves once an update has seen the cluster answer
    (its `clusterExists` output read back: components/previous.py). The founding controller's
    Ignition is then a join with a certificate key and no CA material; nothing else changes."""
    render(tmp_path / "first")
    assert "stage: the cluster exists" not in capsys.readouterr().out
    render(tmp_path / "second", "--cluster-exists")
    assert "stage: the cluster exists" in capsys.readouterr().out
    first, second = tmp_path / "first/matchbox/ignition", tmp_path / "second/matchbox/ignition"
    founding, joining = (
        _ignition_files(first / "lab-c1.ign"),
        _ignition_files(second / "lab-c1.ign"),
    )
    assert "/etc/stubernetes/pki/ca.key" in founding
    assert not any(p.startswith("/etc/stubernetes/pki/") for p in joining)
    documents = list(yaml.safe_load_all(joining["/etc/stubernetes/kubeadm.yaml"]))
    assert [d["kind"] for d in documents] == ["JoinConfiguration"]
    assert len(bytes.fromhex(documents[0]["controlPlane"]["certificateKey"])) == 32
    assert not (tmp_path / "second/machines/c1/etc/stubernetes/pki").exists()
    assert (tmp_path / "first/machines/c1/etc/stubernetes/pki/ca.key").exists()
    for path in second.iterdir():
        files = _ignition_files(path)
        assert not [p for p, contents in files.items() if b"PRIVATE KEY-----" in contents], path
    # The workers' Ignition is the same in both stages, and the second stage is reproducible.
    for name in ("lab-w1.ign", "lab-w2.ign"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    render(tmp_path / "again", "--cluster-exists")
    assert tree(tmp_path / "again") == tree(tmp_path / "second")


def test_the_summary_names_what_each_download_must_hash_to(tmp_path: Path) -> None:
    """A file the node fetches has no contents to show in the review tree: its summary line
    says where it comes from and the digest Ignition refuses it without (its
    `verification.hash`), and the tree holds no file for it."""
    render(tmp_path / "out")
    for name in ("c1", "w1", "w2"):
        config = json.loads((tmp_path / f"out/matchbox/ignition/lab-{name}.ign").read_bytes())
        files = config["storage"]["files"]
        fetched = [f for f in files if not f["contents"]["source"].startswith("data:")]
        # kubeadm, kubectl, kubelet, the CNI plugins' and crictl's archives.
        assert len(fetched) == 5, name
        machine = tmp_path / f"out/machines/{name}"
        summary = (machine / "summary.txt").read_text().splitlines()
        for entry in fetched:
            source, digest = entry["contents"]["source"], entry["contents"]["verification"]["hash"]
            assert digest.startswith("sha256-") and len(digest) == len("sha256-") + 64
            assert (
                f"  {entry['mode']:04o} {entry['path']}  [fetched at first boot from {source}, "
                f"refused unless its digest is {digest}]"
            ) in summary
            assert not (machine / entry["path"].lstrip("/")).exists()
