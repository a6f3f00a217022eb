"""The renewal script's reading of `kubeadm certs check-expiration`, against the REAL kubeadm
(v1.36.3, built by scripts/tools) on a scratch tree it made itself (`kubeadm init phase certs
all` and `kubeconfig all`, chrooted there with `--rootfs`, as tests/real/control_plane/kubeadm.py
does), so that the format the stand-in kubeadm of tests/host/node_standin.py prints is pinned to
what kubeadm prints.

The tree's certificates last 30 days (ClusterConfiguration `certificateValidityPeriod`,
kubeadm v1beta4), so all are due within the script's window; super-admin.conf is removed, as on
a controller that joined (only `kubeadm init` writes it). A real `kubeadm certs renew` then
makes its certificate last a year: without a cluster to read the configuration from, kubeadm
falls back to its defaults (cmd/kubeadm/app/cmd/certs.go getInternalCfg).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from node_standin import KUBEADM_CERTS, certificate_entry, jsonpath
from tool_cache import tool_bin

from ignition.assets import read_asset
from ignition.cert_renewal import RENEW_BEFORE_DAYS, RENEWAL_BIN

KUBEADM = tool_bin("kubernetes", "kubeadm")
SCRIPT = read_asset(f"renewal/{Path(RENEWAL_BIN).name}")
DAY = 86400

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(KUBEADM is None, reason="kubeadm is not built: ./scripts/tools kubernetes"),
    pytest.mark.skipif(os.geteuid() != 0, reason="kubeadm --rootfs chroots, which needs root"),
]

CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: c1
localAPIEndpoint:
  advertiseAddress: 192.0.2.10
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
# Nothing listens here: kubeadm's look for the cluster's configuration fails at once.
controlPlaneEndpoint: 127.0.0.1:1
certificateValidityPeriod: 720h
"""


def kubeadm(root: Path, *args: str) -> str:
    assert KUBEADM is not None
    done = subprocess.run(
        [str(KUBEADM), *args, f"--rootfs={root}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"kubeadm {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def sourced(function: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run a function of the renewal script, sourced (its main does not run then)."""
    read, write = os.pipe()
    os.write(write, SCRIPT.encode())
    os.close(write)
    try:
        return subprocess.run(
            ["bash", "-c", f"source /dev/fd/{read} && {function}"],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            pass_fds=(read,),
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
        )
    finally:
        os.close(read)


def not_after(root: Path, name: str) -> int:
    """The certificate's NotAfter, read from the file kubeadm wrote (a kubeconfig's embedded
    client certificate for the *.conf ones)."""
    path = root / KUBEADM_CERTS[name][0].lstrip("/")
    if name.endswith(".conf"):
        user = yaml.safe_load(path.read_text())["users"][0]["user"]
        pem = base64.b64decode(user["client-certificate-data"])
    else:
        pem = path.read_bytes()
    return int(x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/kubernetes").mkdir(parents=True)
    (root / "etc/kubernetes/kubeadm.yaml").write_text(CONFIG)
    kubeadm(root, "init", "phase", "certs", "all", "--config", "/etc/kubernetes/kubeadm.yaml")
    kubeadm(root, "init", "phase", "kubeconfig", "all", "--config", "/etc/kubernetes/kubeadm.yaml")
    (root / "etc/kubernetes/super-admin.conf").unlink()
    return root


def check_expiration(root: Path) -> str:
    template = sourced('printf %s "$CHECK_TEMPLATE"', "").stdout
    return kubeadm(root, "certs", "check-expiration", "-o", f"jsonpath={template}")


def parsed(output: str) -> tuple[dict[str, int], str]:
    done = sourced("parse_expiration", output)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ") for line in done.stdout.splitlines())
    return {name: int(epoch) for name, epoch in lines.items()}, done.stderr


def test_the_script_reads_real_kubeadms_expiration(tree: Path) -> None:
    output = check_expiration(tree)
    expiries, notes = parsed(output)
    present = sorted(set(KUBEADM_CERTS) - {"super-admin.conf"})
    # Every certificate kubeadm lists (the stand-in's list), at its real NotAfter.
    assert sorted(expiries) == present
    assert expiries == {name: not_after(tree, name) for name in present}
    assert "super-admin.conf: not on this machine" in notes
    # All of them are due: 30 days left, within the window.
    now = time.time()
    assert all(now < e < now + RENEW_BEFORE_DAYS * DAY for e in expiries.values())


def test_the_standins_output_is_kubeadms(tree: Path) -> None:
    """The stand-in's CertificateExpirationInfo entries are the real -o json's, and its
    jsonpath evaluation of the script's template gives the real -o jsonpath output."""
    real = json.loads(kubeadm(tree, "certs", "check-expiration", "-o", "json"))
    assert real["kind"] == "CertificateExpirationInfo"
    assert real["apiVersion"] == "output.kubeadm.k8s.io/v1alpha3"
    assert [c["name"] for c in real["certificates"]] == sorted(KUBEADM_CERTS)
    for entry in real["certificates"]:
        expiry = None
        if not entry["missing"]:
            expiry = not_after(tree, entry["name"])
        ours = certificate_entry(
            entry["name"], expiry, entry["externallyManaged"], entry.get("caName", "")
        )
        assert abs(ours.pop("residualTime") - entry.pop("residualTime")) <= 60
        assert ours == entry
    template = sourced('printf %s "$CHECK_TEMPLATE"', "").stdout
    assert jsonpath(template, real) == check_expiration(tree)


def test_a_real_renewal_moves_the_expiry_out_of_the_window(tree: Path) -> None:
    before, _ = parsed(check_expiration(tree))
    out = kubeadm(tree, "certs", "renew", "apiserver")
    assert "certificate for serving the Kubernetes API renewed" in out
    after, _ = parsed(check_expiration(tree))
    assert after["apiserver"] > time.time() + 364 * DAY
    assert {n: e for n, e in after.items() if n != "apiserver"} == {
        n: e for n, e in before.items() if n != "apiserver"
    }
