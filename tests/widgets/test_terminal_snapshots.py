"""Pictures of recorded console streams in the terminal widget at 80x24."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.widgets.terminal_app import TerminalApp

DATA = Path(__file__).parent.parent / "data" / "console"
SIZE = (80, 24)


def feeding(*reads: bytes) -> Any:
    """A `run_before` that feeds `reads` one by one and waits for them to be painted."""

    async def run(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, TerminalApp)
        for data in reads:
            app.view.feed(data)
        for _ in range(1000):
            if app.view.pending_bytes == 0:
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)  # the last frame
        await pilot.wait_for_scheduled_animations()

    return run


def test_linux_boot(snap_compare: Any) -> None:
    log = (DATA / "linux-boot.log").read_bytes()
    # As a serial line delivers it: in reads of a few hundred bytes.
    reads = [log[at : at + 300] for at in range(0, len(log), 300)]
    assert snap_compare(TerminalApp(), terminal_size=SIZE, run_before=feeding(*reads))


def test_full_screen_program_with_colours(snap_compare: Any) -> None:
    log = (DATA / "top-colour.log").read_bytes()
    # Up to top's last frame (its exit scrolls the screen).
    frame = log[: log.rindex(b"\x1b[?1l\x1b>")]
    assert snap_compare(TerminalApp(), terminal_size=SIZE, run_before=feeding(frame))


def test_utf8_split_across_reads(snap_compare: Any) -> None:
    text = "h\u00e9llo w\u00f6rld \u4e2d\u6587\u5b57 \U0001f600 | \u00bd \u2192 \u03bb\r\n".encode()
    text += "\x1b[1;32m\u2714 ok\x1b[0m \x1b[7m\u53cd\u8f6c\x1b[0m|end\r\n".encode()
    one_byte_reads = [text[at : at + 1] for at in range(len(text))]
    assert snap_compare(TerminalApp(), terminal_size=SIZE, run_before=feeding(*one_byte_reads))
