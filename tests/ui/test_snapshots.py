"""Snapshots of the main screens. Data is the demo estate (fixed), the clock is fixed, and
nothing blinks: the filter box is left before the picture is taken."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from ovmtui.screens.dialogs import ConfirmDialog
from tests.ui.conftest import estate_with_dead_host, loaded, make_app, table, wait_until

SIZE = (140, 40)


def until_loaded(*keys: str, hosts: int | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await loaded(pilot, app, hosts=hosts)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.1)

    return run_before


def test_dashboard(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=until_loaded())


def test_dashboard_filtered_and_sorted(snap_compare: Any) -> None:
    keys = ("slash", *"ovs0", "enter", "o", "down", "down", "space")
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=until_loaded(*keys))


def test_force_off_confirmation(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await loaded(pilot, app)
        await pilot.press("slash", *"db01", "enter", "home", "K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        # The dialog focuses Cancel once mounted: wait for it, or the picture races it.
        await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
        assert table(app).cursor_vm.vm.name == "db01"
        await pilot.pause(0.1)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_read_only(snap_compare: Any) -> None:
    assert snap_compare(make_app(read_only=True), terminal_size=SIZE, run_before=until_loaded())


def test_unreachable_host(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await loaded(pilot, app, hosts=2)
        from ovmtui.model import HostKey
        from ovmtui.widgets.estate_tree import EstateTree

        app.screen.query_one(EstateTree).select_host(HostKey("prod", "dead01"))
        await pilot.pause(0.1)

    assert snap_compare(
        make_app(estate_with_dead_host()), terminal_size=SIZE, run_before=run_before
    )


def force_off_asked() -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await loaded(pilot, app)
        await pilot.press("slash", *"db01", "enter", "home", "K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
        await pilot.pause(0.1)

    return run_before


def test_confirmation_80x24(snap_compare: Any) -> None:
    """The keys that answer are on the buttons and in the dialog's own footer."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=force_off_asked())


def test_confirmation_40x12(snap_compare: Any) -> None:
    """Title and buttons on screen; the warning and the command scroll between them."""
    assert snap_compare(make_app(), terminal_size=(40, 12), run_before=force_off_asked())
