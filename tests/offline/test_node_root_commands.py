"""The lab's node root (tests/lab/node_rootfs.py) has every command the node's scripts call.

The scripts the project's Ignition writes run on Fedora CoreOS, which has these commands; the
lab's Debian stand-in has only the packages it lists. Each command the scripts and units under
ignition/files/ call is read from their text (shell_commands.py) and must appear in
:data:`COMMAND_SOURCES`: a Debian package that the root installs, or what the project itself
puts on the machine. So a new command in a script fails here until it is mapped, and a mapped
package the root lacks fails too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab import node_rootfs
from shell_commands import commands, defined_functions

FILES = Path(__file__).resolve().parents[2] / "ignition" / "files"
SCRIPT_DIRS = ("setup", "report", "renewal", "node", "backup", "upgrade", "vip")
# What the project puts on the machine itself: Ignition writes kubeadm, kubectl and the kubelet
# to /usr/local/bin (ignition/node_binaries.py BIN_DIR), the setup unpacks crictl there
# (ignition/files/setup/phase-node), and the project's own scripts and units.
PROJECT = "project"
# Debian bookworm packages with "Essential: yes" (`apt-cache show`): every Debian root has them,
# mmdebstrap's minbase included.
DEBIAN_ESSENTIAL = frozenset(
    ["bash", "coreutils", "diffutils", "findutils", "grep", "sed", "tar", "gzip", "util-linux"]
)

# command -> where it comes from on the node root.
COMMAND_SOURCES: dict[str, str] = {
    **dict.fromkeys(
        [
            "cat",
            "chcon",
            "chmod",
            "cp",
            "cut",
            "date",
            "dirname",
            "head",
            "install",
            "ls",
            "mkdir",
            "mktemp",
            "mv",
            "readlink",
            "rm",
            "sha256sum",
            "sleep",
            "sort",
            "stat",
            "sync",
            "tail",
            "tee",
            "timeout",
            "touch",
            "tr",
        ],
        "coreutils",
    ),
    "awk": "mawk",
    "cmp": "diffutils",
    "find": "findutils",
    "grep": "grep",
    "sed": "sed",
    "tar": "tar",
    "gzip": "gzip",  # tar --gzip runs it
    "curl": "curl",
    "gpg": "gpg",
    "jq": "jq",
    "ip": "iproute2",
    "selinuxenabled": "selinux-utils",
    "systemctl": "systemd",
    "journalctl": "systemd",
    "systemd-run": "systemd",
    "modprobe": "kmod",
    "ctr": PROJECT,  # containerd's client, from scripts/tools' build (node_rootfs.py)
    "mount": "mount",
    "umount": "mount",
    "losetup": "mount",
    "iptables": "iptables",
    "runc": "runc",
    **dict.fromkeys(
        [
            "kubeadm",
            "kubectl",
            "kubelet",
            "crictl",
            "stubernetes-setup",
            "stubernetes-renew-certs",
            "report-status",
            "etcd-backup",
            "stubernetes-upgrade",
        ],
        PROJECT,
    ),
}

# Commands the node needs beside the scripts':
# - kubeadm v1.36.3's join preflight fails without losetup, mount and cp in PATH, and asks for
#   no other executable (k8s.io/kubernetes@v1.36.3 cmd/kubeadm/app/preflight/checks_linux.go
#   addExecChecks, from checks.go addCommonChecks, run by RunJoinNodeChecks);
# - the kubelet mounts and unmounts volumes with mount and umount, inside a transient scope
#   of systemd-run where systemd runs (k8s.io/mount-utils v0.36.3 mount.go, mount_linux.go),
#   attaches block volumes with losetup (pkg/volume/util/volumepathhandler), makes its
#   KUBE-IPTABLES-HINT chain with iptables (pkg/kubelet/kubelet_network_linux.go) and serves
#   node logs with journalctl (pkg/kubelet/kubelet_server_journal_linux.go); it runs no nsenter
#   any more (no exec of it under pkg/);
# - containerd's unit loads overlay with modprobe (containerd.service ExecStartPre) and its
#   runc shim runs runc.
NODE_NEEDS = frozenset(
    [
        "losetup",
        "mount",
        "cp",
        "umount",
        "systemd-run",
        "iptables",
        "journalctl",
        "modprobe",
        "runc",
    ]
)


def _shell_scripts(directory: Path) -> list[Path]:
    return [
        p
        for p in sorted(directory.iterdir())
        if p.is_file()
        and (p.read_text().startswith("#!/bin/bash") or "shell=bash" in p.read_text()[:200])
    ]


def script_commands() -> dict[str, set[str]]:
    """command -> the files that call it, over every script and unit under ignition/files."""
    common = defined_functions((FILES / "setup/common.sh").read_text())
    called: dict[str, set[str]] = {}
    for name in SCRIPT_DIRS:
        directory = FILES / name
        scripts = _shell_scripts(directory)
        functions = frozenset(common.union(*(defined_functions(p.read_text()) for p in scripts)))
        for path in scripts:
            for command in commands(path.read_text(), functions):
                called.setdefault(command, set()).add(f"{name}/{path.name}")
        for unit in sorted(directory.glob("*.service")):
            for m in re.finditer(r"^Exec\w*=[-@:+!]*(\S+)", unit.read_text(), re.M):
                called.setdefault(m.group(1).rsplit("/", 1)[-1], set()).add(f"{name}/{unit.name}")
    return called


def needed_commands() -> set[str]:
    """Every command the node calls: the scripts', gzip where tar --gzip runs it, NODE_NEEDS."""
    needed = set(script_commands()) | NODE_NEEDS
    if any("--gzip" in p.read_text() for d in SCRIPT_DIRS for p in _shell_scripts(FILES / d)):
        needed.add("gzip")
    return needed


def unmapped(called: set[str]) -> set[str]:
    return called - COMMAND_SOURCES.keys()


def packages_missing(needed: set[str]) -> dict[str, str]:
    """command -> its Debian package, for each one the root does not install."""
    have = DEBIAN_ESSENTIAL | set(node_rootfs.PACKAGES)
    return {
        c: COMMAND_SOURCES[c]
        for c in sorted(needed)
        if COMMAND_SOURCES[c] != PROJECT and COMMAND_SOURCES[c] not in have
    }


def test_the_scripts_call_what_the_reader_finds() -> None:
    # The reader sees the commands of a few known scripts: a reader that found nothing would
    # make the checks below pass on an empty set.
    called = script_commands()
    assert {"sha256sum", "tar", "systemctl"} <= called.keys()
    assert "setup/phase-node" in called["sha256sum"]
    assert {"selinuxenabled", "chcon"} <= called.keys()
    assert {"kubeadm", "crictl", "curl", "jq", "gpg"} <= called.keys()


def test_every_command_has_a_known_source() -> None:
    called = script_commands()
    missing = {c: sorted(called[c]) for c in sorted(unmapped(set(called)))}
    assert not missing, f"commands with no source in COMMAND_SOURCES (map each): {missing}"


def test_every_needed_package_is_in_the_root() -> None:
    assert not packages_missing(needed_commands()), "add to node_rootfs.PACKAGES"


def test_the_table_names_only_commands_something_needs() -> None:
    # A command no script calls any more leaves its row (and perhaps a package) behind.
    assert not COMMAND_SOURCES.keys() - needed_commands()


def test_a_missing_package_is_reported() -> None:
    COMMAND_SOURCES_BEFORE = dict(COMMAND_SOURCES)
    try:
        COMMAND_SOURCES["frobnicate"] = "frobnicate-tools"
        assert packages_missing({"frobnicate", "curl"}) == {"frobnicate": "frobnicate-tools"}
    finally:
        COMMAND_SOURCES.clear()
        COMMAND_SOURCES.update(COMMAND_SOURCES_BEFORE)
    assert unmapped({"frobnicate", "curl"}) == {"frobnicate"}


SAMPLE = r"""#!/bin/bash
# a comment naming notacommand
PHASES=(node kubeadm finish)
helper() { printf '%s\n' "$(date -u +%s)"; }
out=$(timeout 5 kubectl get nodes 2>&1) || echo "failed: $(tail -n 1 "$log")"
case $1 in
etcd-server | etcd-peer) echo etcd ;;
*.key) install -D "$1" /x ;;
esac
while IFS= read -r line; do :; done < <(find . -type f | sort)
if ((count > 1)) && [[ $x == y || -e $z ]]; then
	{ "$LIB_DIR/phase" 2>&1 1>&3 | tee "$log" >&2; } 3>&1
fi
helper >"$file.tmp"
"""


@pytest.mark.parametrize("sample", [SAMPLE])
def test_the_reader_finds_commands_and_nothing_else(sample: str) -> None:
    assert commands(sample) == {
        "date",
        "timeout",
        "kubectl",
        "tail",
        "install",
        "find",
        "sort",
        "tee",
    }
