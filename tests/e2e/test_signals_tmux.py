"""SIGTERM, SIGHUP and SIGINT end ovmtui as q does: the terminal is given back as it was."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.shell import RESTORED, ShellSession, wait_gone

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
