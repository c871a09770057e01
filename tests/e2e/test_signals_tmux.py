"""SIGTERM, SIGHUP and SIGINT end ovmtui as q does: the terminal is given back as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.shell import BINARY, RESTORED, ShellSession, wait_gone

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
    ids=["TERM", "HUP", "INT"],
)
def test_signal_ends_cleanly_and_restores_the_terminal(
    tmp_path: Path, signum: int, status: int
) -> None:
    session = ShellSession(tmp_path)
    try:
        pid = session.start_ovmtui(tmp_path / "r.sqlite")
        assert session.flags()["alternate_on"] == "1"  # the test sees what it means to see
        os.kill(pid, signum)
        wait_gone(pid)
        assert session.status_of_last() == status
        screen = session.screen()
        assert "Traceback" not in screen and "Error" not in screen, screen
        assert session.flags() == RESTORED
        assert session.echoes(), session.screen()
    finally:
        session.kill()


def test_terminal_gone_ends_it(tmp_path: Path) -> None:
    """The SSH session drops: the terminal hangs up for good. Nothing is left to restore,
    and ovmtui must still end (not wait on a terminal that will never read again)."""
    session = ShellSession(tmp_path)
    try:
        pid = session.start_ovmtui(tmp_path / "r.sqlite")
    finally:
        session.kill()  # the pane, its terminal and its shell go
    wait_gone(pid)


def test_ctrl_c_while_the_repository_is_locked_ends_without_a_traceback(
    tmp_path: Path,
) -> None:
    """Before the screen: another process holds the repository's write lock, and ovmtui
    waits for it (up to SQLite's busy timeout); the operator gives up with Ctrl+C."""
    repository = tmp_path / "r.sqlite"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    made = subprocess.run(
        [str(BINARY), "--demo", "--repository", str(repository), "inventory"],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    holder = sqlite3.connect(repository, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held as a stuck writer would
    try:
        proc = subprocess.Popen(
            [str(BINARY), "--demo", "--repository", str(repository)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        time.sleep(1.5)  # into the wait for the lock
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "Traceback" not in err, err
    assert proc.returncode == 130, err
    assert took < 3, f"{took:.1f} s after Ctrl+C"
