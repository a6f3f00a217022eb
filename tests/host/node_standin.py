"""The program behind every command the simulated host stands in for, or records.

Installed in a simulated machine under each command's name (the name it is run by picks the
model): in the stand-ins' directory, first in the boot's PATH, for what the Fedora CoreOS image
provides (systemctl, reboot, curl, chcon, selinuxenabled) and for the real sha256sum and tar,
which it runs (recorded_tools.py); and as /usr/local/bin/kubeadm, kubectl and kubelet, where the
machine's Ignition wrote it, fetched from Matchbox as those binaries are (sim_downloads.py).
Each call goes through the recorder and its fault plan (standin_call.py); the models:

  systemctl, reboot       standin_systemd.py    units, start jobs, the reboot request
  (containerd), crictl    standin_runtime.py    the runtime, its CRI socket, the static pods
  kubeadm                 standin_kubeadm.py    init, its phases, reset (join: _join.py;
                                                download-certs and `certs`: _certs.py)
  kubectl, curl           standin_api.py        what the API server answers
  selinuxenabled, chcon   standin_selinux.py    labels and what the policy denies
  sha256sum, tar          recorded_tools.py     the real tools, recorded
"""

from __future__ import annotations

import os
import sys
import time

from recorded_tools import sha256sum, tar
from standin_api import curl, kubectl
from standin_call import Call, err, read_status
from standin_kubeadm import kubeadm
from standin_kubeadm_certs import KUBEADM_CERTS, certificate_entry, jsonpath
from standin_runtime import crictl
from standin_selinux import chcon, selinuxenabled
from standin_systemd import reboot, systemctl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# tests/real/test_cert_renewal_real.py pins the stand-in's `kubeadm certs` output to the real
# kubeadm's through these names.
__all__ = ["HANDLERS", "KUBEADM_CERTS", "certificate_entry", "jsonpath", "main"]

HANDLERS: dict[str, Callable[[Call], int]] = {
    "systemctl": systemctl,
    "reboot": reboot,
    "crictl": crictl,
    "kubeadm": kubeadm,
    "kubectl": kubectl,
    "curl": curl,
    "selinuxenabled": selinuxenabled,
    "chcon": chcon,
    "sha256sum": sha256sum,
    "tar": tar,
}


def main() -> int:
    name = os.path.basename(sys.argv[0])
    call = Call(os.environ["SIM_DIR"], name, sys.argv[1:])
    call.log(
        argv=[name, *call.args],
        time=time.time(),
        boot=call.machine["boots"],
        do=call.fault.get("do", "ok"),
        status=read_status(),
    )
    action = call.fault.get("do", "ok")
    if action == "kill":
        call.kill_boot("before its state change")
    if action == "hang":
        # Past any timeout the scripts set: `timeout` or the end of the boot ends it.
        call.log(end="hanging", where="before its state change", effect="none")
        time.sleep(3600)
    if action == "signal":
        call.die("before its state change")
    if action == "fail":
        err(*call.fault.get("stderr", [f"stand-in {name}: failing as planned"]))
        rc = int(call.fault.get("rc", 1))
        call.log(end="exit", rc=rc, effect="none")
        return rc
    if name not in HANDLERS:
        err(f"stand-in: no model of a command named {name}")
        call.log(end="unmodeled", argv=[name, *call.args])
        return 127
    rc = HANDLERS[name](call)
    if action == "kill-after":
        call.kill_boot("after its state change")
    call.log(end="exit", rc=rc, effect=call.effect, steps=call.steps_done)
    return rc


if __name__ == "__main__":
    sys.exit(main())
