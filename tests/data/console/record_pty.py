"""Record what a full-screen program writes to an 80x24 terminal: raw bytes, for the
console widget's snapshot tests (see README-widget.md).

    python tests/data/console/record_pty.py top-colour.log -- top -d 1
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

COLUMNS, ROWS = 80, 24
# (seconds after the start, keys typed): top's "z" turns colours on, "q" quits.
SCRIPT = [(1.5, b"z"), (3.0, b"q")]


def record(argv: list[str]) -> bytes:
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8", "COLUMNS": "80"}
    env.pop("LINES", None)
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True
    )
    os.close(follower)
    start, out, script = time.monotonic(), bytearray(), list(SCRIPT)
    while True:
        if script and time.monotonic() - start >= script[0][0]:
            os.write(leader, script.pop(0)[1])
        ready, _, _ = select.select([leader], [], [], 0.05)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the program has gone
                break
            if not data:
                break
            out += data
        elif process.poll() is not None and not script:
            break
    process.wait(timeout=5)
    os.close(leader)
    return bytes(out)


if __name__ == "__main__":
    target, argv = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    Path(__file__).with_name(target).write_bytes(record(argv))
