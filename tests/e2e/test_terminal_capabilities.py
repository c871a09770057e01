"""The real binary in terminals as they are: dumb, colourless, or limited to ASCII."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.tmux import TmuxSession

pytestmark = pytest.mark.e2e

BINARY = Path(sys.executable).with_name("ovmtui")


def run_on_a_pty(env: dict[str, str], timeout: float = 15.0) -> tuple[int | None, bytes]:
    """Run `ovmtui --demo` on a pseudo-terminal: its exit status (None if it had to be
    killed) and every byte it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(BINARY), "--demo"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every writer has gone
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        try:
            return proc.wait(timeout=max(0.1, deadline - time.monotonic())), output
        except subprocess.TimeoutExpired:  # still drawing: it did not refuse the terminal
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return None, output
    finally:
        os.close(leader)


@pytest.mark.parametrize("term", ["dumb", None])
def test_a_dumb_terminal_is_refused_before_any_escape_sequence(term: str | None) -> None:
    assert BINARY.exists(), f"{BINARY} missing: run make install"
    env = {k: v for k, v in os.environ.items() if k not in ("TERM", "COLORTERM")}
    if term is not None:
        env["TERM"] = term
    status, output = run_on_a_pty(env)
    assert status == 2, f"status {status}; wrote {output[:300]!r}"
    assert b"\x1b" not in output, output[:300]
    assert b"ovmtui inventory" in output, output


_HUES_16 = {*range(31, 37), *range(41, 47), *range(91, 97), *range(101, 107)}
_GREYS_256 = {0, 7, 8, 15, 16, 231, *range(232, 256)}


def hues(screen: str) -> set[str]:
    """The colours in `screen`'s SGR sequences that are not a shade of grey."""
    found: set[str] = set()
    for params in re.findall(r"\x1b\[([0-9;:]*)m", screen):
        codes = [int(p) if p else 0 for p in params.replace(":", ";").split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in (38, 48) and i + 1 < len(codes) and codes[i + 1] == 2:
                rgb = tuple(codes[i + 2 : i + 5])
                if len(set(rgb)) > 1:
                    found.add(f"{code};2;{';'.join(map(str, rgb))}")
                i += 5
            elif code in (38, 48) and i + 1 < len(codes) and codes[i + 1] == 5:
                if codes[i + 2] not in _GREYS_256:
                    found.add(f"{code};5;{codes[i + 2]}")
                i += 3
            else:
                if code in _HUES_16:
                    found.add(str(code))
                i += 1
    return found


def dashboard_escapes(**env: str) -> str:
    session = TmuxSession(
        [str(BINARY), "--demo"], env={"TERM": "xterm-256color", "COLORTERM": "truecolor", **env}
    )
    try:
        session.wait_text("hosts 5 up")
        return session.screen(escapes=True)
    finally:
        session.kill()


def test_no_color_draws_in_shades_of_grey() -> None:
    # Textual's reading of NO_COLOR: no hue anywhere (its monochrome filter), while
    # brightness, bold and reverse still set the cursor and the states apart.
    assert hues(dashboard_escapes()), "the check itself sees no colour without NO_COLOR"
    screen = dashboard_escapes(NO_COLOR="1")
    assert "\x1b[" in screen
    assert hues(screen) == set(), sorted(hues(screen))[:20]


def test_a_c_locale_gets_ascii_only() -> None:
    session = TmuxSession(
        [str(BINARY), "--demo"],
        width=100,
        height=30,
        env={"TERM": "xterm-256color", "LANG": "C", "LC_ALL": "C"},
    )
    try:
        screen = session.wait_text("hosts 5 up")
        assert "app-batch01" in screen
        session.send("K")  # the force-off question, over the dashboard
        screen = session.wait_text("Force off [y]")
        outside = sorted({c for c in screen if not c.isascii()})
        assert outside == [], f"not ASCII: {outside}\n{screen}"
        session.send("n", "q")
    finally:
        session.kill()
