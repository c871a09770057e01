"""The pure parts of the Xen console: which command, and why a console ended."""

from __future__ import annotations

import pytest

from ovmtui.backend.xen_console import _last_line, _why_it_ended, console_argv
from ovmtui.backend.xen_parse.xm_table import TableRow
from ovmtui.errors import HostTimeout
from ovmtui.model import Vm, VmState

WEB01 = Vm(uuid="1" * 32, name="web01", state=VmState.RUNNING, domain_id=12)


def test_xm_attaches_by_domain_id_and_xl_by_name() -> None:
    assert console_argv("xm", WEB01) == ["xm", "console", "12"]
    assert console_argv("xl", WEB01) == ["xl", "console", "web01"]
    unknown_id = Vm(uuid="1" * 32, name="web01", state=VmState.RUNNING)
    assert console_argv("xm", unknown_id) == ["xm", "console", "web01"]


def _row(domid: int | None, state: VmState) -> TableRow:
    return TableRow("web01", domid, 2048, 2, state, 10.0)


@pytest.mark.parametrize(
    ("now", "status", "said", "reason"),
    [
        (None, 0, "", "the domain is gone: it was shut down or destroyed"),
        (_row(None, VmState.SHUTOFF), 0, "", "the guest shut off"),
        (_row(15, VmState.RUNNING), 0, "", "the guest rebooted: it runs as domain 15 now"),
        (_row(12, VmState.BLOCKED), 0, "login:", "`xm console 12` exited with status 0"),
        (
            _row(12, VmState.RUNNING),
            1,
            "xenconsole: Could not open tty",
            "`xm console 12` exited with status 1: xenconsole: Could not open tty",
        ),
        (HostTimeout("no answer"), None, "", "`xm console 12` ended"),
    ],
)
async def test_why_a_console_ended_is_asked_of_the_host(
    now: TableRow | Exception | None, status: int | None, said: str, reason: str
) -> None:
    async def domain_now() -> TableRow | None:
        if isinstance(now, Exception):
            raise now
        return now

    assert await _why_it_ended("xm console 12", WEB01, status, said, domain_now) == reason


def test_the_last_line_is_text_without_escapes() -> None:
    tail = b"boot\r\n\x1b[1;31mxenconsole: \x1b[0mCould not open tty\r\n\x1b[6n\r\n  \r\n"
    assert _last_line(tail) == "xenconsole: Could not open tty"
    assert _last_line(b"\x1b[H\x1b[2J") == ""
