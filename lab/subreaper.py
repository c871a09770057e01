#!/usr/bin/env python3
"""Run a command as a child subreaper: `subreaper.py PROGRAM ARGS...` (lab/lab.py runs
libvirtd this way).

Why: libvirtd daemonizes each QEMU, so QEMU's parent becomes the nearest subreaper, else
PID 1. In the containers this lab runs in, PID 1 reaps exited children only every second
or two, and libvirt waits until a QEMU it killed has really gone (its PID no longer
exists, which a zombie still does): every destroy and shutdown took 1.5-2 s longer. As
their subreaper we reap them at once.

Signals TERM, INT and HUP go to the command. We exit when no child is left: after the
command exits, the QEMUs it started (which outlive it) are still ours to reap.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: subreaper.py PROGRAM ARGS...", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"subreaper: prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])  # noqa: S606 (no shell: argv as given)
        finally:
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            return status
        if pid == child:
            status = os.waitstatus_to_exitcode(code)


if __name__ == "__main__":
    sys.exit(main())
