"""The real `ovmtui --demo` binary in a real terminal."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.e2e.tmux import TmuxSession

pytestmark = pytest.mark.e2e

BINARY = Path(sys.executable).with_name("ovmtui")


def vm_row(screen: str, name: str) -> str:
    for line in screen.splitlines():
        if f" {name} " in line:
            return line
    return ""


def test_demo_filter_act_quit() -> None:
    assert BINARY.exists(), f"{BINARY} missing: run make install"
    session = TmuxSession(
        [str(BINARY), "--demo", "--interval", "1"],
        env={"TERM": "xterm-256color", "COLORTERM": "truecolor"},
    )
    try:
        screen = session.wait_text("app-batch01")
        assert "ovmtui" in screen
        assert "ovs01" in screen and "dev01" in screen  # the tree
        session.wait_text("hosts 5 up")
        # Filter to the Kafka brokers.
        # One burst, as a fast typist sends it: no letter may be lost to the table.
        session.type("/kafka")
        screen = session.wait_for(
            lambda s: "kafka01" in s and "app-batch01" not in s and "web01" not in s,
            what="the filter to leave only the kafka VMs",
        )
        # The cursor is on the first row (kafka01, running): keep the filter and pause it,
        # again in one burst.
        assert "running" in vm_row(screen, "kafka01")
        session.send("Enter", "p")
        session.wait_for(lambda s: "paused" in vm_row(s, "kafka01"), what="kafka01 paused")
        # Force off asks first; answer yes.
        session.send("K")
        session.wait_text("Force off kafka01")
        session.send("y")
        session.wait_for(lambda s: "shutoff" in vm_row(s, "kafka01"), what="kafka01 shut off")
        assert "running" in vm_row(session.screen(), "kafka02")  # only the one VM
        session.send("q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = session.exit_status()
            if status is not None:
                assert status == 0
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"ovmtui did not exit on q; screen:\n{session.screen()}")
    finally:
        session.kill()
