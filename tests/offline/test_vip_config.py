"""The API endpoint's virtual IP: the stack's `stubernetes:vip` and the controllers' keepalived
files (stackconfig/vip.py, ignition/vip.py). The bad stacks under bad-stacks/vip/ are refused
by test_bad_stacks.py; the failover itself runs for real in tests/real/test_vip_failover.py."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from control_plane.program_output import ignition_files

from ignition.vip import CHECK_SCRIPT, KEEPALIVED_CONF, STATIC_POD
from stackconfig.stackfile import load_stack_file
from stubernetes.cli import main

VIP_STACK = Path(__file__).resolve().parent / "vip-stack.yaml"


def _render(out: Path, stack: Path = VIP_STACK) -> dict[str, dict[str, bytes]]:
    assert main(["render", "--stack-file", str(stack), "--out", str(out)]) == 0
    configs = sorted((out / "matchbox/ignition").iterdir())
    return {
        path.stem.removeprefix("lab-"): {
            name: file.contents
            for name, file in ignition_files(json.loads(path.read_bytes())).items()
        }
        for path in configs
    }


def test_the_stack_reads_the_vip() -> None:
    stack = load_stack_file(VIP_STACK).config
    assert stack.vip is not None
    assert (str(stack.vip.address), stack.vip.interface, stack.vip.router_id) == (
        "192.168.10.10",
        "eno1",
        51,
    )
    assert stack.cluster.api_endpoint == "192.168.10.10:6443"


def test_every_controller_and_no_worker_gets_keepalived(tmp_path: Path) -> None:
    files = _render(tmp_path / "out")
    keepalived = (KEEPALIVED_CONF, CHECK_SCRIPT, STATIC_POD)
    for controller in ("c1", "c2", "c3"):
        assert all(path in files[controller] for path in keepalived), controller
    assert not any(path in files["w1"] for path in keepalived)
    # The same configuration on every controller: all start as backups at one priority.
    assert (
        files["c1"][KEEPALIVED_CONF] == files["c2"][KEEPALIVED_CONF] == files["c3"][KEEPALIVED_CONF]
    )
    conf = files["c1"][KEEPALIVED_CONF].decode()
    assert "192.168.10.10/32 dev eno1" in conf
    assert "virtual_router_id 51" in conf
    assert "interface eno1" in conf
    assert "nopreempt" in conf and "state BACKUP" in conf
    assert (
        'script "/etc/keepalived/check-apiserver /etc/kubernetes/pki/ca.crt '
        'https://127.0.0.1:6443/readyz"' in conf
    )


def test_the_static_pod_mounts_what_keepalived_reads(tmp_path: Path) -> None:
    files = _render(tmp_path / "out")
    pod = yaml.safe_load(files["c2"][STATIC_POD])
    assert pod["kind"] == "Pod" and pod["spec"]["hostNetwork"] is True
    (container,) = pod["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"]}
    # What keepalived.conf names inside the container is what the pod mounts from the host.
    assert host[_by_path(mounts, "/usr/local/etc/keepalived/keepalived.conf")] == KEEPALIVED_CONF
    assert host[_by_path(mounts, "/etc/keepalived/check-apiserver")] == CHECK_SCRIPT
    assert host[_by_path(mounts, "/etc/kubernetes/pki/ca.crt")] == "/etc/kubernetes/pki/ca.crt"
    assert {"NET_ADMIN", "NET_RAW"} <= set(container["securityContext"]["capabilities"]["add"])


def _by_path(mounts: dict[str, str], path: str) -> str:
    return next(name for name, mount in mounts.items() if mount == path)


def test_kubeadm_and_the_joining_kubelets_name_the_vip(tmp_path: Path) -> None:
    """The founding controller's controlPlaneEndpoint (which kubeadm writes into every
    kubeconfig and the API server's certificate) and every joining machine's discovery
    endpoint are the VIP, never a controller's own address."""
    files = _render(tmp_path / "out")
    documents = list(yaml.safe_load_all(files["c1"]["/etc/stubernetes/kubeadm.yaml"]))
    (cluster,) = [d for d in documents if d["kind"] == "ClusterConfiguration"]
    assert cluster["controlPlaneEndpoint"] == "192.168.10.10:6443"
    for machine in ("c2", "w1"):
        (join,) = yaml.safe_load_all(files[machine]["/etc/stubernetes/kubeadm.yaml"])
        endpoint = join["discovery"]["bootstrapToken"]["apiServerEndpoint"]
        assert endpoint == "192.168.10.10:6443", machine
