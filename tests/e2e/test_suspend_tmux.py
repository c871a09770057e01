"""Ctrl+Z suspends ovmtui like any terminal program; `fg` brings the whole dashboard back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.shell import ShellSession, wait_gone

pytestmark = pytest.mark.e2e


def fully_drawn(screen: str) -> bool:
    lines = screen.rstrip("\n").splitlines()
    return (
        "hosts 5 up" in screen  # the header
        and "▼ Estate" in screen
        and "dev02" in screen  # the tree
        and "app-batch01" in screen  # the table
        and "palette" in lines[-1]  # the footer
    )


@pytest.mark.parametrize("how", ["ctrl-z", "kill-tstp"])
def test_suspend_then_fg_redraws_everything(tmp_path: Path, how: str) -> None:
    session = ShellSession(tmp_path)
    try:
        pid = session.start_ovmtui(tmp_path / "r.sqlite", then_status=False)
        session.wait_for(fully_drawn, what="the dashboard")
        if how == "ctrl-z":
            session.send("C-z")
        else:
            os.kill(pid, signal.SIGTSTP)
        screen = session.wait_for(
            lambda s: "Stopped" in s and s.rstrip("\n").splitlines()[-1].startswith("ready$"),
            what="the shell's prompt, ovmtui stopped",
        )
        assert session.flags()["alternate_on"] == "0", screen  # the shell's own screen
        session.line("fg")
        # No resize, no key: everything must come back by itself.
        session.wait_for(fully_drawn, timeout=10, what="the dashboard drawn again after fg")
        session.send("q")
        wait_gone(pid)
        session.line("echo after=$?")
        assert session.status_of_last(marker="after") == 0
    finally:
        session.kill()
