"""The setup service makes every role a node in one boot (sim_machine: simulated boots of the
unit, runner and phases the REAL Ignition binary wrote from the project's config, with the
binaries it fetched from the real Matchbox; stand-ins for systemd, the runtime, kubeadm and the
API server; the real sha256sum, tar, shell and coreutils).

Needs root (mount namespaces), the Ignition and Matchbox builds (scripts/tools). The crash and
fault suites are in test_setup_crashes.py and test_setup_faults.py, reinstalls in
test_setup_reinstall.py, SELinux in test_setup_selinux.py.
"""

from __future__ import annotations

import copy
import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from ignition_root import IgnitionFailed
from setup_harness import (
    ADDRESSES,
    CNI_ARCHIVE,
    CNI_BIN_DIR,
    CONTROL_PLANE_LABEL,
    FAST,
    ONE_ATTEMPT,
    ROLES,
    SIMULATED,
    MachineFactory,
    assert_done,
    certificate_key,
    cluster_for,
    config_for,
    describe,
    keys,
    kubeadm_key,
    token,
)
from sim_cluster import running_cluster, upload_kubeadm_certs
from sim_crash import invariant_violations
from sim_downloads import SimDownloads, cni_archive, cni_plugins, release_files
from sim_machine import STANDINS, SimMachine
from sim_systemd import UnitError, parse_unit

from ignition.material import ClusterMaterial
from ignition.node import machine_ignition_json
from ignition.node_binaries import node_downloads
from stackconfig import StackConfig, parse_stack_config

pytest_plugins = ["sim_fixtures"]

pytestmark = SIMULATED


# ------------------------------------------------------------------------------------ the unit


def test_unit_file_is_parsed_as_systemd_reads_it(tmp_path: Path) -> None:
    unit = parse_unit(
        "[Unit]\nConditionPathExists=!/a\nConditionPathExists=|/b\nConditionPathExists=|/c\n"
        "[Service]\nType=oneshot\nExecStart=/bin/one 'two words'\nExecStart=-/bin/three\n"
        "TimeoutStartSec=infinity\n[Install]\nWantedBy=multi-user.target\n"
    ).runnable()
    assert unit.exec_start == (("", ("/bin/one", "two words")), ("-", ("/bin/three",)))
    assert unit.timeout_start is None
    assert str(unit.unmet_condition(tmp_path)) == "ConditionPathExists=|/b"
    (tmp_path / "c").touch()
    assert unit.unmet_condition(tmp_path) is None
    (tmp_path / "a").touch()
    assert str(unit.unmet_condition(tmp_path)) == "ConditionPathExists=!/a"
    # A drop-in's empty ExecStart= resets the list; a service the simulation cannot run as
    # systemd would is refused, not run some other way.
    kubelet = parse_unit("[Service]\nExecStart=/usr/bin/kubelet\n", "[Service]\nExecStart=\n")
    assert kubelet.exec_start == ()
    with pytest.raises(UnitError, match="only oneshot"):
        parse_unit("[Service]\nExecStart=/usr/local/bin/kubelet\n").runnable()


# ------------------------------------------------------------------- a fresh machine, one boot


@pytest.mark.parametrize("name", list(ROLES), ids=list(ROLES.values()))
def test_fresh_machine_is_done_in_one_boot(make_machine: MachineFactory, name: str) -> None:
    machine = make_machine(name)
    boots = machine.boot_until_settled()

    # The first boot does it all and asks for no reboot; the next one finds nothing to do.
    assert [(b.ran, b.reboot_requested, b.exit_code) for b in boots] == [
        (True, False, 0),
        (False, False, None),
    ], describe(boots)
    assert boots[1].skipped == "unit disabled"
    assert_done(machine)
    calls = machine.calls()
    assert keys(calls) == {
        # Phase node: the archives (the CNI plugins', crictl's) checked, unpacked, the runtime
        # started (it runs already).
        "sha256sum": 2,
        "tar": 2,
        "systemctl start": 1,
        # Before kubeadm: the host directories confined containers use are labelled for them
        # (/etc/kubernetes, /var/lib/etcd and OpenEBS's on a controller, OpenEBS's on a worker).
        "selinuxenabled": 1,
        "chcon": 1 if name == "w1" else 3,
        # Before `kubeadm init`: does the cluster already answer at the API endpoint, or on
        # either peer controller's own address? (No: this founds it.)
        **({"curl": 3} if name == "c1" else {}),
        kubeadm_key(machine): 1,
        "systemctl disable": 1,
    }
    assert all(call.rc == (7 if call.key == "curl" else 0) for call in calls)
    assert invariant_violations(machine, boots) == []

    # The units as Ignition and the presets left them; containerd ran before setup started.
    state = machine.state()
    assert state["units"] == {
        "stubernetes-setup.service": "disabled",
        "containerd.service": "enabled",
        "docker.service": "masked",
        "kubelet.service": "enabled",
    }
    assert state["containerd"]["starts"][0] == ["power-on", "running"]
    # The CNI plugins, exactly as the archive Ignition fetched has them.
    plugins = {p.name: p for p in machine.file(CNI_BIN_DIR).iterdir()}
    assert {n: p.read_bytes() for n, p in plugins.items()} == cni_plugins(cni_archive())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in plugins.values())
    assert machine.file("/var/lib/stubernetes/cni-plugins-1.9.1.unpacked").exists()

    node = machine.cluster()["nodes"][name]
    assert (CONTROL_PLANE_LABEL in node["labels"]) == (name != "w1")
    if name == "w1":
        assert node["labels"]["stubernetes.dev/storage"] == "local"
    else:
        member = machine.cluster()["etcd"][f"https://{ADDRESSES[name]}:2380"]
        assert member == {"name": name, "started": True, "data": f"{name}-install-1"}

    # Later boots run nothing; the kubelet runs, and a controller's etcd (a new pod sandbox at
    # every boot) can still read its data.
    later = [machine.boot() for _ in range(2)]
    assert [b.skipped for b in later] == ["unit disabled", "unit disabled"]
    assert len(machine.calls()) == len(calls)
    assert machine.state()["kubelet"]["running"]
    if name != "w1":
        member = machine.cluster()["etcd"][f"https://{ADDRESSES[name]}:2380"]
        assert member["started"]
    if name == "c1":
        assert machine.cluster()["api"] == "up"


def test_kubeadm_and_kubectl_are_the_ones_ignition_fetched(
    make_machine: MachineFactory, ha_stack: StackConfig
) -> None:
    """Nothing stands in for kubeadm and kubectl on the simulated host's own PATH: the setup
    runs the programs Ignition wrote to /usr/local/bin (mode 0755) after checking their
    digests; without them it would fail."""
    assert not {"kubeadm", "kubectl", "kubelet"} & set(STANDINS)
    machine = make_machine("w1")
    files = release_files(ha_stack.cluster.kubernetes_release)
    for download in node_downloads(ha_stack):
        written = machine.file(download.path)
        assert written.read_bytes() == files[download.name], download.name
        assert stat.S_IMODE(written.stat().st_mode) == download.mode
    machine.file("/usr/local/bin/kubeadm").unlink()
    boots = machine.boot_until_settled(max_boots=1)
    assert "timeout: failed to run command" in boots[0].journal
    assert "kubeadm join" not in keys(machine.calls())


def test_init_controller_founds_a_cluster_that_workers_join(
    make_machine: MachineFactory, tmp_path: Path, ha_stack: StackConfig, material: ClusterMaterial
) -> None:
    """The cluster state the init controller leaves is the one a worker's join needs."""
    init = make_machine("c1")
    init.boot_until_settled()
    cluster = init.cluster()
    cluster["tokens"].append(token("w1"))  # the Pulumi side's per-machine token
    worker = SimMachine.create(tmp_path / "w1", config_for(ha_stack, "w1", material), cluster)
    worker.boot_until_settled()
    assert_done(worker)
    assert set(worker.cluster()["nodes"]) == {"c1", "w1"}


# A controller other than the founding one joins with kubeadm's certificate key: its Ignition
# carries no CA material, and `kubeadm join` downloads it from the kubeadm-certs Secret that the
# program uploaded for this install, decrypting it with the key in its kubeadm.yaml (kubernetes
# cmd/kubeadm/app/cmd/phases/join/controlplaneprepare.go, cmd/kubeadm/app/phases/copycerts/
# copycerts.go DownloadCerts; the stand-in decrypts the program's real AES-GCM Secret).


def test_joining_controller_gets_the_ca_material_from_kubeadm_certs(
    make_machine: MachineFactory, material: ClusterMaterial
) -> None:
    machine = make_machine("c2")
    assert not machine.file("/etc/stubernetes/pki").exists()
    assert machine.state()["facts"]["certificate_key"] == certificate_key("c2")
    machine.boot_until_settled()
    assert_done(machine)
    for name, text in material.kubeadm_files().items():
        path = machine.file(f"/etc/kubernetes/pki/{name}")
        assert path.read_text() == text, name
        # keyutil.WriteKey writes a key 0600; certutil.WriteCert a certificate 0644.
        assert stat.S_IMODE(path.stat().st_mode) == (0o600 if name.endswith(".key") else 0o644)
    (join,) = [c for c in machine.calls() if c.key == "kubeadm join"]
    assert join.steps[0] == "control-plane-prepare/download-certs"


def test_founding_controller_joins_with_its_key_once_the_cluster_exists(
    tmp_path: Path, ha_stack: StackConfig, material: ClusterMaterial
) -> None:
    """Its Ignition after the update that saw the cluster answer (`cluster_exists`): a join with
    its certificate key, no CA material; booted into the cluster its peers keep, it joins it."""
    config = machine_ignition_json(
        ha_stack,
        ha_stack.machine("c1"),
        material,
        token("c1"),
        FAST,
        certificate_key=certificate_key("c1"),
        cluster_exists=True,
    )
    controllers = {"c2": ADDRESSES["c2"], "c3": ADDRESSES["c3"]}
    cluster = running_cluster(
        material.ca_cert_hash, [token(m.name) for m in ha_stack.machines], controllers, "c2"
    )
    upload_kubeadm_certs(cluster, material, certificate_key("c1"), token("c1"), "c1")
    machine = SimMachine.create(tmp_path / "c1", config, cluster)
    assert not machine.file("/etc/stubernetes/pki").exists()
    assert machine.state()["facts"]["kind"] == "JoinConfiguration"
    machine.boot_until_settled()
    assert_done(machine)
    assert machine.file("/etc/kubernetes/pki/ca.key").read_text() == material.ca.key_pem
    (join,) = [c for c in machine.calls() if c.key == "kubeadm join"]
    assert join.steps[0] == "control-plane-prepare/download-certs"
    assert machine.cluster()["etcd"][f"https://{ADDRESSES['c1']}:2380"]["started"]


def test_the_founding_controller_and_workers_download_nothing(
    make_machine: MachineFactory,
) -> None:
    for name in ("c1", "w1"):
        machine = make_machine(name)
        assert machine.state()["facts"]["certificate_key"] is None
        machine.boot_until_settled()
        assert_done(machine)
        assert not any("download-certs" in " ".join(c.steps) for c in machine.calls())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.pop("secrets"),
            'Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret '
            "might have expired.",
        ),
        (
            lambda c: c.update(objects=[o for o in c["objects"] if "kubeadm-certs" not in o]),
            'secrets "kubeadm-certs" is forbidden: User "system:bootstrap:',
        ),
    ],
    ids=["no-upload", "no-rbac"],
)
def test_joining_controller_without_its_upload_fails_as_kubeadm_does(
    make_machine: MachineFactory, change: Any, message: str
) -> None:
    machine = make_machine("c2", ONE_ATTEMPT)
    machine.update_cluster(change)
    boots = machine.boot_until_settled(max_boots=3)
    status = machine.status()
    assert status["state"] == "failed", describe(boots)
    assert (
        "error execution phase control-plane-prepare/download-certs: error downloading "
        in (status["last_error"])
    )
    assert message in status["last_error"]
    assert not machine.file("/etc/kubernetes/pki/ca.key").exists()


def test_joining_controller_cannot_read_an_upload_for_another_install(
    make_machine: MachineFactory, material: ClusterMaterial
) -> None:
    """The Secret left from another install (another key): AES-GCM refuses the key."""
    machine = make_machine("c2", ONE_ATTEMPT)
    machine.update_cluster(
        lambda c: upload_kubeadm_certs(c, material, certificate_key("c2", 2), token("c2", 2), "c2")
    )
    boots = machine.boot_until_settled(max_boots=3)
    status = machine.status()
    assert status["state"] == "failed", describe(boots)
    assert (
        "error decoding secret data with provided key: cipher: message authentication failed"
        in status["last_error"]
    )
    assert not machine.file("/etc/kubernetes/pki/ca.key").exists()


# ----------------------------------------------------------------- the release Ignition fetches
#
# A stack names a patch release ("1.36.3") or a minor ("1.36": its newest pinned patch, 1.36.4,
# stackconfig/release_digests.py); the node fetches that release's binaries from its path
# (/assets/kubernetes/v<release>/bin/linux/amd64/<binary> with cachedInstall,
# ignition/node_binaries.py) and kubeadm's kubernetesVersion is the same release.


@pytest.mark.parametrize(
    ("version", "release"), [("1.36.3", "1.36.3"), ("1.36", "1.36.4")], ids=["patch", "minor"]
)
def test_the_node_runs_the_release_the_stack_names(
    tmp_path: Path,
    served_values: dict[str, Any],
    downloads: SimDownloads,
    material: ClusterMaterial,
    version: str,
    release: str,
) -> None:
    values = copy.deepcopy(served_values)
    values["cluster"]["kubernetesVersion"] = version
    stack = parse_stack_config(downloads.serve(values))
    assert stack.cluster.kubernetes_release == release
    machine = SimMachine.create(
        tmp_path / "c1", config_for(stack, "c1", material), cluster_for(stack, "c1", material)
    )
    for binary in ("kubeadm", "kubectl", "kubelet"):
        text = machine.file(f"/usr/local/bin/{binary}").read_text()
        assert text.endswith(f"# stands in for v{release}\n"), binary
    machine.boot_until_settled()
    assert_done(machine)
    assert machine.state()["facts"]["kubernetes_version"] == f"v{release}"
    assert (
        f"[init] Using Kubernetes version: v{release}"
        in machine.sim.joinpath("journal/boot-1.log").read_text()
    )


def test_a_release_the_server_lacks_stops_ignition_before_setup(
    tmp_path: Path,
    served_values: dict[str, Any],
    downloads: SimDownloads,
    material: ClusterMaterial,
) -> None:
    """Matchbox has no kubelet for the release: Ignition cannot write the file, and fails the
    boot (on a node: the emergency shell, before any unit runs); no setup ever starts."""
    stack = parse_stack_config(served_values)
    (kubelet,) = [d for d in node_downloads(stack) if d.name == "kubelet"]
    downloads.withdraw(kubelet.asset)
    try:
        with pytest.raises(IgnitionFailed, match='usr/local/bin/kubelet": resource not found'):
            SimMachine.create(tmp_path / "w1", config_for(stack, "w1", material), {})
    finally:
        downloads.put(kubelet.asset, release_files(stack.cluster.kubernetes_release)["kubelet"])


def test_ignition_refuses_a_download_whose_digest_differs(
    tmp_path: Path,
    served_values: dict[str, Any],
    downloads: SimDownloads,
    material: ClusterMaterial,
) -> None:
    """The CNI archive Matchbox serves is not the one whose sha256 the config names: the real
    Ignition refuses to write it, and the boot fails there."""
    stack = parse_stack_config(served_values)
    (archive,) = [d for d in node_downloads(stack) if d.path == CNI_ARCHIVE]
    served = cni_archive() + b"\0"
    downloads.put(archive.asset, served)
    refused = (
        f'{CNI_ARCHIVE}": hash verification failed (calculated {hashlib.sha256(served).hexdigest()}'
        f" but expected {archive.sha256})"
    )
    try:
        with pytest.raises(IgnitionFailed, match=re.escape(refused)):
            SimMachine.create(tmp_path / "w1", config_for(stack, "w1", material), {})
    finally:
        downloads.put(archive.asset, cni_archive())
