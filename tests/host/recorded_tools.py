"""The real sha256sum (GNU coreutils) and tar (GNU tar), run through the recorder.

Not stand-ins: the host's own tools do the work, on the files of the simulated machine, with
the arguments, input and output the scripts gave them. They run through the recorder
(standin_call.py) so that their calls are in the call log, the crash suite can kill the boot
before and after each, and the fault plan can make tar fail half-way through an archive:
- "fail-midway": tar runs with its file size limit set to the fault's `bytes` and SIGXFSZ
  ignored, so the kernel refuses a write past it with EFBIG (setrlimit(2), RLIMIT_FSIZE);
  GNU tar then reports "Wrote only N of M bytes" for that member, goes on with the next, and
  exits 2 (GNU tar manual, "Exit status": 2 is a fatal error), as on a disk that filled up.
  What it wrote before stays on disk.
- "kill-midway": the same, then a power cut.
"""

from __future__ import annotations

import os
import sys

from standin_call import Call

# Where the host's own tools are: its /usr/local/bin is the simulated machine's in a boot.
SYSTEM_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


def real_tool(name: str) -> str:
    for directory in SYSTEM_DIRS:
        if os.access(f"{directory}/{name}", os.X_OK):
            return f"{directory}/{name}"
    raise FileNotFoundError(f"no {name} on this host")


def run_real(call: Call, size_limit: int | None = None) -> int:
    """The real tool with the call's arguments, stdin, stdout and stderr; its exit status
    (128+N when a signal N killed it, as a shell reports it)."""
    path = real_tool(call.name)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            if size_limit is not None:
                import resource
                import signal

                resource.setrlimit(resource.RLIMIT_FSIZE, (size_limit, size_limit))
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            os.execv(path, [call.name, *call.args])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def sha256sum(call: Call) -> int:
    return run_real(call)


def tar(call: Call) -> int:
    action = call.fault.get("do")
    if action in ("fail-midway", "kill-midway"):
        rc = run_real(call, int(call.fault.get("bytes", 8192)))
        call.step("part of the archive")
        if action == "kill-midway":
            call.kill_boot("midway through the archive")
        return rc
    rc = run_real(call)
    if rc == 0:
        call.step("the whole archive", last=True)
    return rc
