"""Snapshots of the console screens at 80x24 and 200x50: a console attached to a guest that
has printed its boot (the recorded lab boot log) with its status line, and the list of open
consoles. The guest is in memory (tests/services/test_consoles.py's transport behind a fake
host), the log path fixed: every figure on screen is the same from run to run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.backend.base import ConsoleChannel
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Capability, Vm, VmState
from ovmtui.screens.console import ConsoleScreen
from ovmtui.screens.consoles import ConsolesScreen
from ovmtui.services import consoles
from ovmtui.services.consoles import ConsoleState
from ovmtui.widgets.terminal_view import TerminalView
from tests.services.fakes import CAPABILITIES, FakeBackend
from tests.services.test_consoles import MemoryChannel
from tests.ui.conftest import make_app, table, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
BOOT = (Path(__file__).parent.parent / "data" / "console" / "linux-boot.log").read_bytes()
LOGS = Path("/tmp/ovmtui-test-snapshots/consoles")


class ConsoleHost(FakeBackend):
    """A fake host whose guests' consoles print the recorded boot log when attached."""

    def __init__(self) -> None:
        super().__init__("p", "h1", [Vm(uuid="u-web", name="web01", state=VmState.RUNNING)])
        self.capabilities = CAPABILITIES | {Capability.CONSOLE}

    @asynccontextmanager
    async def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[ConsoleChannel]:
        channel = MemoryChannel()
        channel.guest_says(BOOT)
        yield channel

    def console_command(self, vm: Vm) -> str:
        return f"xm console {vm.name}"


@pytest.fixture(autouse=True)
def quiet_and_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)
    # The log's name carries the UTC time it was opened: one fixed name for the pictures.
    monkeypatch.setattr(
        consoles, "console_log_path", lambda directory, name, _now: directory / f"{name}.log"
    )
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "web01.log").unlink(missing_ok=True)


def console_app() -> OvmApp:
    estate = EstateConfig(
        (PoolConfig("p", (HostConfig("p", "h1", libvirt="test:///default"),)),), "test"
    )
    return make_app(estate, backends=[ConsoleHost()], interval_s=3600.0, console_log_dir=LOGS)


def rows(app: Any) -> int:
    try:
        return table(app).row_count
    except NoMatches:
        return 0


async def _attached(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: rows(app) == 1)
    await pilot.press("c")
    await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
    screen = app.screen
    assert isinstance(screen, ConsoleScreen)
    view = screen.query_one(TerminalView)
    await wait_until(
        pilot,
        lambda: (
            screen.console.status.state is ConsoleState.ATTACHED
            and screen.console.status.bytes_in == len(BOOT)
            and view.pending_bytes == 0
        ),
    )
    await pilot.pause(0.2)  # the last frame, and the status line's count


@pytest.mark.parametrize("size", SIZES)
def test_console_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(), terminal_size=size, run_before=_attached)


@pytest.mark.parametrize("size", SIZES)
def test_consoles_list(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await _attached(pilot)
        await pilot.press("ctrl+right_square_bracket", "C")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConsolesScreen))
        await pilot.pause()

    assert snap_compare(console_app(), terminal_size=size, run_before=run)
