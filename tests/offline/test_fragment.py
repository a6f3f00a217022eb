"""Tests for stackconfig.fragment: the strict Ignition 3.3.0 fragment validator.

Where `ignition-validate` is installed, valid fragments are also checked against it (exit 0 and no
output at all, not even warnings), and representative invalid ones must make it fail too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackconfig.fragment import fragment_problems

IGNITION_VALIDATE = shutil.which("ignition-validate")
needs_ignition_validate = pytest.mark.skipif(
    IGNITION_VALIDATE is None, reason="ignition-validate is not installed"
)


def ignition_validate(fragment: dict[str, Any]) -> tuple[int, str]:
    """Run the real validator on the fragment wrapped as a 3.3.0 config: (exit code, output)."""
    assert IGNITION_VALIDATE is not None
    config = {**fragment, "ignition": {**fragment.get("ignition", {}), "version": "3.3.0"}}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.ign"
        path.write_text(json.dumps(config))
        result = subprocess.run(
            [IGNITION_VALIDATE, str(path)], capture_output=True, text=True, timeout=60
        )
    return result.returncode, (result.stdout + result.stderr).strip()


def data_url(text: str) -> str:
    return "data:," + quote(text, safe="")


def sha512(data: bytes) -> str:
    return "sha512-" + hashlib.sha512(data).hexdigest()


CHRONY = "server 10.0.0.1 iburst\n"
KUBELET_DROPIN = "[Service]\nEnvironment=KUBELET_EXTRA_ARGS=--node-ip=10.0.0.21\n"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbZ0qQ7Zy3nXo0sXz4Q2yD8m4o2bU3Z5n6k7T8r9s0a ops"

GOOD: dict[str, dict[str, Any]] = {
    "file with a data URL": {
        "storage": {
            "files": [
                {
                    "path": "/etc/chrony.conf",
                    "mode": 420,
                    "overwrite": True,
                    "user": {"name": "root"},
                    "group": {"id": 0},
                    "contents": {
                        "source": data_url(CHRONY),
                        "compression": "",
                        "verification": {"hash": sha512(CHRONY.encode())},
                    },
                }
            ]
        }
    },
    "gzipped base64 file and an append": {
        "storage": {
            "files": [
                {
                    "path": "/etc/motd",
                    "contents": {
                        "source": "data:;base64,"
                        + base64.b64encode(gzip.compress(b"hello\n", mtime=0)).decode(),
                        "compression": "gzip",
                    },
                    "append": [{"source": "data:text/plain;base64,d29ybGQK"}],
                }
            ]
        }
    },
    "unit with dropins": {
        "systemd": {
            "units": [
                {
                    "name": "kubelet.service",
                    "enabled": True,
                    "dropins": [{"name": "20-node-ip.conf", "contents": KUBELET_DROPIN}],
                },
                {"name": "zincati.service", "mask": True},
                {
                    "name": "var-lib-data.mount",
                    "enabled": True,
                    "contents": "[Mount]\nWhat=/dev/sdb\nWhere=/var/lib/data\n"
                    "[Install]\nWantedBy=local-fs.target\n",
                },
            ]
        }
    },
    "user with keys": {
        "passwd": {
            "users": [
                {
                    "name": "core",
                    "sshAuthorizedKeys": [SSH_KEY],
                    "groups": ["wheel", "sudo"],
                    "passwordHash": "$y$j9T$abcdefgh$ijklmnopqrstuvwxyz0123456789ABCDEFGHIJK",
                },
                {"name": "ops", "uid": 1500, "shell": "/bin/bash", "homeDir": "/home/ops"},
            ],
            "groups": [{"name": "ops", "gid": 1500}],
        }
    },
    "kernel arguments": {
        "kernelArguments": {"shouldExist": ["console=ttyS0,115200n8"], "shouldNotExist": ["quiet"]}
    },
    "full config with every section": {
        "ignition": {
            "version": "3.3.0",
            "config": {"merge": [{"source": "https://boot.example.com/extra.ign"}]},
            "timeouts": {"httpResponseHeaders": 20, "httpTotal": 0},
            "security": {"tls": {"certificateAuthorities": [{"source": "s3://bucket/ca.pem"}]}},
            "proxy": {"httpsProxy": "https://proxy:3128", "noProxy": ["10.0.0.0/8", ".local"]},
        },
        "storage": {
            "disks": [
                {
                    "device": "/dev/disk/by-id/nvme-a",
                    "wipeTable": False,
                    "partitions": [{"label": "data", "number": 0, "sizeMiB": 0}],
                }
            ],
            "raid": [{"name": "md0", "level": "raid1", "devices": ["/dev/sdb", "/dev/sdc"]}],
            "luks": [
                {
                    "name": "data",
                    "device": "/dev/disk/by-partlabel/data",
                    "clevis": {"tpm2": True, "tang": [{"url": "http://tang", "thumbprint": "x"}]},
                }
            ],
            "filesystems": [
                {"device": "/dev/mapper/data", "format": "xfs", "path": "/var/lib/data"}
            ],
            "directories": [{"path": "/etc/kubernetes", "mode": 493}],
            "links": [{"path": "/etc/localtime", "target": "../usr/share/zoneinfo/UTC"}],
        },
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [SSH_KEY]}]},
    },
    "older 3.x version and nulls for optional fields": {
        "ignition": {"version": "3.0.0"},
        "storage": {"files": [{"path": "/etc/x", "mode": None, "overwrite": None}]},
        "systemd": {"units": None},
    },
}


@pytest.mark.parametrize("fragment", GOOD.values(), ids=GOOD.keys())
def test_good_fragments_pass(fragment: dict[str, Any]) -> None:
    assert fragment_problems(fragment) == []


@needs_ignition_validate
@pytest.mark.parametrize("fragment", GOOD.values(), ids=GOOD.keys())
def test_good_fragments_pass_ignition_validate(fragment: dict[str, Any]) -> None:
    code, output = ignition_validate(fragment)
    if "null" in json.dumps(fragment):  # a null object makes it warn, but it still accepts
        assert code == 0
    else:
        assert (code, output) == (0, "")


def test_empty_fragment_passes() -> None:
    assert fragment_problems({}) == []


def test_yaml_octal_mode_is_fine() -> None:
    fragment = yaml.safe_load("storage:\n  files:\n    - path: /etc/x\n      mode: 0644\n")
    assert fragment["storage"]["files"][0]["mode"] == 420
    assert fragment_problems(fragment) == []


def test_yaml_0o_mode_is_a_string() -> None:
    fragment = yaml.safe_load("storage:\n  files:\n    - path: /etc/x\n      mode: 0o644\n")
    assert fragment_problems(fragment) == [
        "storage.files[0].mode: expected an integer, got str '0o644'"
    ]


def files(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"storage": {"files": list(entries)}}


def units(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"systemd": {"units": list(entries)}}


def users(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"passwd": {"users": list(entries)}}


HEX64 = "ab" * 32
BAD: list[tuple[str, Any, str, str]] = [
    # (id, fragment, path of the problem, part of its message)
    ("not an object", ["storage"], "(root)", "expected an object, got list"),
    ("version too new", {"ignition": {"version": "3.4.0"}}, "ignition.version", "unsupported"),
    ("version 2.x", {"ignition": {"version": "2.3.0"}}, "ignition.version", "unsupported"),
    ("version not a string", {"ignition": {"version": 3}}, "ignition.version", "expected a string"),
    (
        "config replace",
        {"ignition": {"config": {"replace": {"source": "https://x/c.ign"}}}},
        "ignition.config.replace",
        "must not replace",
    ),
    ("unknown top-level key", {"storge": {}}, "storge", "did you mean 'storage'?"),
    ("unknown file key", files({"path": "/a", "mod": 420}), "storage.files[0].mod", "unknown key"),
    (
        "unknown dropin key",
        units({"name": "a.service", "dropins": [{"name": "a.conf", "content": ""}]}),
        "systemd.units[0].dropins[0].content",
        "did you mean 'contents'?",
    ),
    (
        "unknown tang key",
        {
            "storage": {
                "luks": [
                    {
                        "name": "d",
                        "device": "/dev/sda",
                        "clevis": {"tang": [{"url": "http://t", "thumbprint": "x", "thumb": 1}]},
                    }
                ]
            }
        },
        "storage.luks[0].clevis.tang[0].thumb",
        "unknown key",
    ),
    (
        "unknown CA key",
        {"ignition": {"security": {"tls": {"certificateAuthorities": [{"sorce": "data:,"}]}}}},
        "ignition.security.tls.certificateAuthorities[0].sorce",
        "did you mean 'source'?",
    ),
    (
        "unknown kernel arguments key",
        {"kernelArguments": {"shouldexist": ["a"]}},
        "kernelArguments.shouldexist",
        "did you mean 'shouldExist'?",
    ),
    (
        "key with a colon",
        files({"path": "/a", "a: b": 1}),
        "storage.files[0]",
        "unknown key 'a: b'",
    ),
    ("mode as a string", files({"path": "/a", "mode": "0644"}), "storage.files[0].mode", "integer"),
    ("mode as a bool", files({"path": "/a", "mode": True}), "storage.files[0].mode", "bool True"),
    ("mode as a fraction", files({"path": "/a", "mode": 420.5}), "storage.files[0].mode", "float"),
    ("mode as a float", files({"path": "/a", "mode": 420.0}), "storage.files[0].mode", "420.0"),
    ("mode too big", files({"path": "/a", "mode": 0o10000}), "storage.files[0].mode", "4095"),
    ("mode negative", files({"path": "/a", "mode": -1}), "storage.files[0].mode", "4095"),
    (
        "directory mode too big",
        {"storage": {"directories": [{"path": "/d", "mode": 0o17777}]}},
        "storage.directories[0].mode",
        "between 0 and 4095",
    ),
    ("uid too big", users({"name": "u", "uid": 2**64}), "passwd.users[0].uid", "out of range"),
    (
        "enabled as a string",
        units({"name": "a.service", "enabled": "yes"}),
        "systemd.units[0].enabled",
        "boolean",
    ),
    ("path as a number", files({"path": 5}), "storage.files[0].path", "expected a string"),
    ("files as an object", {"storage": {"files": {"path": "/a"}}}, "storage.files", "a list"),
    ("storage as a list", {"storage": []}, "storage", "expected an object"),
    (
        "keys as a string",
        users({"name": "u", "sshAuthorizedKeys": SSH_KEY}),
        "passwd.users[0].sshAuthorizedKeys",
        "a list",
    ),
    (
        "null list item",
        {"kernelArguments": {"shouldExist": [None]}},
        "kernelArguments.shouldExist[0]",
        "null",
    ),
    (
        "required path missing",
        files({"mode": 420}),
        "storage.files[0].path",
        "required but missing",
    ),
    ("required path null", files({"path": None}), "storage.files[0].path", "required, got null"),
    (
        "link target missing",
        {"storage": {"links": [{"path": "/l"}]}},
        "storage.links[0].target",
        "required",
    ),
    ("unit name missing", units({"enabled": True}), "systemd.units[0].name", "required"),
    (
        "owner id and name",
        files({"path": "/a", "user": {"id": 0, "name": "root"}}),
        "storage.files[0].user",
        "only one of id, name",
    ),
    ("relative file path", files({"path": "etc/x"}), "storage.files[0].path", "absolute"),
    ("unsimplified path", files({"path": "/etc/../x"}), "storage.files[0].path", "simplified"),
    (
        "trailing slash",
        {"storage": {"directories": [{"path": "/d/"}]}},
        "storage.directories[0].path",
        "simplified",
    ),
    (
        "relative link path",
        {"storage": {"links": [{"path": "l", "target": "/t"}]}},
        "storage.links[0].path",
        "absolute",
    ),
    (
        "relative disk device",
        {"storage": {"disks": [{"device": "sda"}]}},
        "storage.disks[0].device",
        "absolute",
    ),
    ("unit without suffix", units({"name": "kubelet"}), "systemd.units[0].name", ".service"),
    (
        "unit with a bad suffix",
        units({"name": "kubelet.servce"}),
        "systemd.units[0].name",
        "must end",
    ),
    ("unit suffix only", units({"name": ".service"}), "systemd.units[0].name", "must end"),
    (
        "dropin without .conf",
        units({"name": "a.service", "dropins": [{"name": "override.cnf"}]}),
        "systemd.units[0].dropins[0].name",
        "must end with '.conf'",
    ),
    (
        "ftp source",
        files({"path": "/a", "contents": {"source": "ftp://h/x"}}),
        "storage.files[0].contents.source",
        "'ftp'",
    ),
    (
        "file source",
        files({"path": "/a", "append": [{"source": "file:///x"}]}),
        "storage.files[0].append[0].source",
        "'file'",
    ),
    (
        "bare path source",
        files({"path": "/a", "contents": {"source": "/etc/x"}}),
        "storage.files[0].contents.source",
        "scheme ''",
    ),
    (
        "merge source",
        {"ignition": {"config": {"merge": [{"source": "git://x"}]}}},
        "ignition.config.merge[0].source",
        "'git'",
    ),
    (
        "data URL without comma",
        files({"path": "/a", "contents": {"source": "data:hello"}}),
        "storage.files[0].contents.source",
        "','",
    ),
    (
        "data URL with a space",
        files({"path": "/a", "contents": {"source": "data:,a b"}}),
        "storage.files[0].contents.source",
        "percent-encoded",
    ),
    (
        "data URL bad base64",
        files({"path": "/a", "contents": {"source": "data:;base64,abc"}}),
        "storage.files[0].contents.source",
        "base64",
    ),
    (
        "compression xz",
        files({"path": "/a", "contents": {"source": "data:,", "compression": "xz"}}),
        "storage.files[0].contents.compression",
        "'xz'",
    ),
    (
        "hash md5",
        files({"path": "/a", "contents": {"verification": {"hash": "md5-" + HEX64[:32]}}}),
        "storage.files[0].contents.verification.hash",
        "sha512",
    ),
    (
        "hash too short",
        files({"path": "/a", "contents": {"verification": {"hash": "sha256-abc"}}}),
        "storage.files[0].contents.verification.hash",
        "64 hex",
    ),
    (
        "sha512 with a sha256 digest",
        files({"path": "/a", "contents": {"verification": {"hash": "sha512-" + HEX64}}}),
        "storage.files[0].contents.verification.hash",
        "128 hex",
    ),
    (
        "hash not hex",
        files({"path": "/a", "contents": {"verification": {"hash": "sha256-" + "z" * 64}}}),
        "storage.files[0].contents.verification.hash",
        "hex",
    ),
    (
        "filesystem format",
        {"storage": {"filesystems": [{"device": "/dev/sda", "format": "ntfs"}]}},
        "storage.filesystems[0].format",
        "'ntfs'",
    ),
    (
        "duplicate file path",
        files({"path": "/a"}, {"path": "/a"}),
        "storage.files[1].path",
        "duplicate '/a' (first at storage.files[0].path)",
    ),
    (
        "file and directory with one path",
        {"storage": {"files": [{"path": "/a"}], "directories": [{"path": "/a"}]}},
        "storage.directories[0].path",
        "first at storage.files[0].path",
    ),
    (
        "file and link with one path",
        {"storage": {"files": [{"path": "/a"}], "links": [{"path": "/a", "target": "/b"}]}},
        "storage.links[0].path",
        "duplicate",
    ),
    (
        "duplicate unit",
        units({"name": "a.service"}, {"name": "a.service", "mask": True}),
        "systemd.units[1].name",
        "duplicate 'a.service'",
    ),
    (
        "duplicate dropin",
        units({"name": "a.service", "dropins": [{"name": "a.conf"}, {"name": "a.conf"}]}),
        "systemd.units[0].dropins[1].name",
        "duplicate",
    ),
    (
        "duplicate user",
        users({"name": "core"}, {"name": "core", "uid": 1000}),
        "passwd.users[1].name",
        "duplicate 'core'",
    ),
    (
        "duplicate ssh key",
        users({"name": "core", "sshAuthorizedKeys": [SSH_KEY, SSH_KEY]}),
        "passwd.users[0].sshAuthorizedKeys[1]",
        "duplicate",
    ),
]


@pytest.mark.parametrize(
    ("fragment", "path", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_fragments_name_the_path(fragment: Any, path: str, message: str) -> None:
    problems = fragment_problems(fragment)
    at_path = [p for p in problems if p.startswith(f"{path}: ")]
    assert at_path, f"no problem at {path!r} in {problems}"
    assert any(message in p for p in at_path), at_path


def test_every_problem_is_reported_at_once() -> None:
    fragment = {
        "storage": {"files": [{"path": "a", "mode": "420"}]},
        "systemd": {"units": [{"name": "x", "enabled": "yes"}]},
    }
    assert [p.partition(": ")[0] for p in fragment_problems(fragment)] == [
        "storage.files[0].path",
        "storage.files[0].mode",
        "systemd.units[0].name",
        "systemd.units[0].enabled",
    ]


def test_problem_paths_have_no_colon() -> None:
    """Callers split 'path: message' at the first ':'."""
    for _, fragment, _, _ in BAD:
        for problem in fragment_problems(fragment):
            path, sep, message = problem.partition(": ")
            assert sep and message and ":" not in path, problem


# --- agreement with the real ignition-validate ---------------------------------------------

REJECTED_BY_BOTH: dict[str, dict[str, Any]] = {
    "mode as a string": files({"path": "/a", "mode": "420"}),
    "mode as a float": files({"path": "/a", "mode": 420.0}),
    "mode too big": files({"path": "/a", "mode": 0o10000}),
    "path not absolute": files({"path": "etc/x"}),
    "path not simplified": {"storage": {"directories": [{"path": "/etc/./x"}]}},
    "enabled as a string": units({"name": "a.service", "enabled": "yes"}),
    "uid as a bool": users({"name": "core", "uid": True}),
    "keys as a string": users({"name": "core", "sshAuthorizedKeys": SSH_KEY}),
    "unit without suffix": units({"name": "kubelet"}),
    "dropin without .conf": units({"name": "a.service", "dropins": [{"name": "x"}]}),
    "ftp source": files({"path": "/a", "contents": {"source": "ftp://h/x"}}),
    "data URL with a space": files({"path": "/a", "contents": {"source": "data:,a b"}}),
    "compression xz": files({"path": "/a", "contents": {"source": "data:,", "compression": "xz"}}),
    "hash too short": files({"path": "/a", "contents": {"verification": {"hash": "sha256-ab"}}}),
    "duplicate path": {"storage": {"files": [{"path": "/a"}], "links": [{"path": "/a"}]}},
    "duplicate user": users({"name": "core"}, {"name": "core"}),
    "link without target": {"storage": {"links": [{"path": "/l"}]}},
    "owner id and name": files({"path": "/a", "group": {"id": 0, "name": "root"}}),
    # coreos/ignition config/v3_3/types/storage.go: nothing below a link of the same config,
    # no hard link to one of its directories.
    "directory below a link": {
        "storage": {"directories": [{"path": "/a/a"}], "links": [{"path": "/a", "target": "/b"}]}
    },
    "file below a link": {
        "storage": {"files": [{"path": "/a/f"}], "links": [{"path": "/a", "target": "/b"}]}
    },
    "link below a link": {
        "storage": {"links": [{"path": "/a", "target": "/b"}, {"path": "/a/l", "target": "/c"}]}
    },
    "hard link to a directory": {
        "storage": {
            "directories": [{"path": "/d"}],
            "links": [{"path": "/l", "target": "/d", "hard": True}],
        }
    },
}


@needs_ignition_validate
@pytest.mark.parametrize("fragment", REJECTED_BY_BOTH.values(), ids=REJECTED_BY_BOTH.keys())
def test_rejections_agree_with_ignition_validate(fragment: dict[str, Any]) -> None:
    assert fragment_problems(fragment) != []
    code, output = ignition_validate(fragment)
    assert code != 0, output


def test_version_is_rejected_like_ignition() -> None:
    for version in ("3.4.0", "3.1.1", "2.3.0", "3.3"):
        assert fragment_problems({"ignition": {"version": version}}) != [], version


@needs_ignition_validate
def test_unknown_key_is_stricter_than_ignition_validate() -> None:
    fragment = files({"path": "/a", "mod": 420})
    assert fragment_problems(fragment) != []
    code, output = ignition_validate(fragment)
    assert code == 0  # ignition-validate only warns on a typo...
    assert "Unused key mod" in output  # ...which is why this validator makes it a problem


# --- random valid fragments ------------------------------------------------------------------

WORD = st.from_regex(r"[a-z][a-z0-9_-]{0,9}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
UNIT_SUFFIXES = [".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount",
                 ".swap", ".slice", ".scope", ".device"]  # fmt: skip
OWNER = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["root", "core", "etcd"])}),
    st.fixed_dictionaries({"id": st.integers(0, 65535)}),
)
MODES = st.one_of(st.none(), st.integers(0, 0o777))


@st.composite
def contents(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(TEXT).encode()
    encoding = draw(st.sampled_from(["percent", "base64", "gzip"]))
    result: dict[str, Any] = {}
    if encoding == "percent":
        result["source"] = "data:," + quote(data, safe="")
    elif encoding == "base64":
        result["source"] = "data:text/plain;base64," + base64.b64encode(data).decode()
    else:
        result["source"] = "data:;base64," + base64.b64encode(gzip.compress(data, mtime=0)).decode()
        result["compression"] = "gzip"
    if encoding != "gzip" and draw(st.booleans()):
        result["compression"] = draw(st.sampled_from([None, ""]))
    if draw(st.booleans()):
        result["verification"] = {"hash": sha512(data)}
    return result


@st.composite
def storage(draw: st.DrawFn) -> dict[str, Any]:
    paths = draw(
        st.lists(st.lists(WORD, min_size=1, max_size=3), unique_by=tuple, max_size=6).map(
            lambda all_parts: ["/" + "/".join(parts) for parts in all_parts]
        )
    )
    result: dict[str, list[dict[str, Any]]] = {"files": [], "directories": [], "links": []}
    for path in paths:
        kind = draw(st.sampled_from(sorted(result)))
        entry: dict[str, Any] = {"path": path}
        optional: dict[str, st.SearchStrategy[Any]] = {
            "user": OWNER,
            "group": OWNER,
            "overwrite": st.booleans(),
        }
        if kind == "files":
            optional |= {
                "mode": MODES,
                "contents": contents(),
                "append": st.lists(contents(), max_size=3),
            }
        elif kind == "directories":
            optional |= {"mode": MODES}
        else:
            entry["target"] = draw(st.sampled_from(["/usr/bin/true", "../lib/x", "target"]))
            optional |= {"hard": st.booleans()}
        entry |= draw(st.fixed_dictionaries({}, optional=optional))
        if kind == "files" and "contents" not in entry:
            entry.pop("overwrite", None)  # overwrite needs contents.source
        result[kind].append(entry)
    return {kind: entries for kind, entries in result.items() if entries}


UNIT_CONTENTS = st.builds(
    "[Unit]\nDescription={}\n\n[Service]\nExecStart=/usr/bin/echo {}\n\n"
    "[Install]\nWantedBy=multi-user.target\n".format,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ]{0,20}[A-Za-z0-9]", fullmatch=True),
    WORD,
)
DROPINS = st.lists(
    st.fixed_dictionaries(
        {"name": WORD.map(lambda w: f"{w}.conf")},
        optional={"contents": st.just("[Service]\nEnvironment=A=b\n")},
    ),
    max_size=3,
    unique_by=lambda dropin: str(dropin["name"]),
)
UNITS = st.lists(
    st.fixed_dictionaries(
        {"name": st.tuples(WORD, st.sampled_from(UNIT_SUFFIXES)).map("".join)},
        optional={
            "enabled": st.booleans(),
            "mask": st.booleans(),
            "contents": UNIT_CONTENTS,
            "dropins": DROPINS,
        },
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda unit: str(unit["name"]),
)

SSH_KEYS = st.lists(
    st.builds(
        "ssh-ed25519 {} {}".format,
        st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
        WORD,
    ),
    max_size=3,
    unique=True,
)
USERS = st.lists(
    st.fixed_dictionaries(
        {"name": WORD},
        optional={
            "sshAuthorizedKeys": SSH_KEYS,
            "uid": st.integers(1000, 60000),
            "groups": st.lists(st.sampled_from(["wheel", "sudo", "docker", "adm"]), unique=True),
            "shell": st.sampled_from(["/bin/bash", "/bin/sh"]),
            "homeDir": WORD.map(lambda w: f"/home/{w}"),
            "gecos": st.from_regex(r"[A-Za-z ]{0,20}", fullmatch=True),
            "passwordHash": st.just("$6$salt$abcdefghijklmnopqrstuvwxyz"),
            "noCreateHome": st.booleans(),
            "noUserGroup": st.booleans(),
            "noLogInit": st.booleans(),
            "system": st.booleans(),
        },
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda user: str(user["name"]),
)

FRAGMENTS = st.fixed_dictionaries(
    {},
    optional={
        "storage": storage(),
        "systemd": st.fixed_dictionaries({"units": UNITS}),
        "passwd": st.fixed_dictionaries({"users": USERS}),
    },
)


@needs_ignition_validate
@settings(max_examples=30, deadline=None)
@given(FRAGMENTS)
def test_random_fragments_are_judged_alike_by_both_validators(fragment: dict[str, Any]) -> None:
    """Fragments of known keys and well-formed values: whatever one validator refuses, the
    other refuses too (the entries' paths can still clash: one below a link of another), and
    what both accept draws no warning either."""
    ours = fragment_problems(fragment)
    code, output = ignition_validate(fragment)
    assert (ours == []) == (code == 0), (ours, output)
    if not ours:
        assert output == ""
