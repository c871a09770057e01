"""Snapshots of the migration screens, at 80x24 and 200x50: the migrate screen's verdicts and
checks, the override dialog of a no-go target, and an evacuation plan (a VM that fits nowhere
named with why). The hosts are in memory (tests/services/test_migration.py): every figure on
screen is fixed."""

from __future__ import annotations

from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.screens.evacuate import EvacuateScreen
from ovmtui.screens.migrate import MigrateScreen, OverrideDialog
from tests.ui.conftest import make_app, table, wait_until
from tests.ui.test_evacuate_ui import estate_and_hosts as evacuation_estate
from tests.ui.test_migrate_ui import estate_and_hosts as migration_estate

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


@pytest.fixture(autouse=True)
def no_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)


def rows(app: Any) -> int:
    """The VM table's rows, 0 while the dashboard is not composed yet."""
    try:
        return table(app).row_count
    except NoMatches:
        return 0


def migration_app() -> OvmApp:
    estate, backends = migration_estate()
    return make_app(estate, backends=backends, interval_s=3600.0)


async def _migrate_screen(pilot: Pilot[Any]) -> MigrateScreen:
    app = pilot.app
    await wait_until(pilot, lambda: rows(app) == 1)
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
    screen = app.screen
    assert isinstance(screen, MigrateScreen)
    await wait_until(pilot, lambda: screen.plan is not None)
    await pilot.pause()
    return screen


@pytest.mark.parametrize("size", SIZES)
def test_migrate_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await _migrate_screen(pilot)
        await pilot.press("down")  # h3, no go: its failed check in the pane below
        await pilot.pause()

    assert snap_compare(migration_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_override_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await _migrate_screen(pilot)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, OverrideDialog))
        await pilot.pause()

    assert snap_compare(migration_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_evacuate_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    estate, backends = evacuation_estate()
    app = make_app(estate, backends=backends, interval_s=3600.0)

    async def run(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: rows(app) == 3)
        await pilot.press("t", "down", "down", "E")
        await wait_until(pilot, lambda: isinstance(app.screen, EvacuateScreen))
        screen = app.screen
        assert isinstance(screen, EvacuateScreen)
        await wait_until(pilot, lambda: screen.plan is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run)
