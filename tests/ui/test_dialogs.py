"""The confirmation dialog: its keys are visible, its footer is its own, it fits small
terminals. Driven by Pilot on the demo estate."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Button

from ovmtui.app import OvmApp
from ovmtui.model import VmState
from ovmtui.screens.dialogs import ConfirmDialog
from tests.ui.conftest import loaded, make_app, state_of, wait_until
from tests.ui.screen_text import screen_lines


async def ask_force_off(pilot: Pilot[object], app: OvmApp) -> ConfirmDialog:
    await loaded(pilot, app)
    await pilot.press("slash", *"db01", "enter", "home", "K")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the dialog")
    await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
    await pilot.pause(0.1)
    dialog = app.screen
    assert isinstance(dialog, ConfirmDialog)
    return dialog


async def test_buttons_show_their_keys() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ask_force_off(pilot, app)
        shown = "\n".join(screen_lines(app))
        # Written as "Force off [y]": Textual markup used to swallow the "[y]".
        assert "Force off [y]" in shown
        assert "Cancel [n]" in shown


async def test_footer_lists_the_dialogs_keys_not_the_dashboards() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ask_force_off(pilot, app)
        footer = screen_lines(app)[-1]
        assert "y Force off" in footer, footer
        assert "n/esc Cancel" in footer, footer
        for dashboard_key in ("Mark", "Shut down", "Start", "Reboot"):
            assert dashboard_key not in footer, footer


async def test_enter_on_the_default_button_cancels() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ask_force_off(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
        await pilot.pause(0.3)
        assert state_of(app, "db01") is VmState.RUNNING
        assert app.action_log == ()


async def test_dialog_fits_40x12_with_its_buttons_on_screen() -> None:
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        dialog = await ask_force_off(pilot, app)
        screen = dialog.region
        for button in dialog.query(Button):
            assert screen.contains_region(button.region), (button.id, button.region)
            # Not merely placed on the screen: not clipped away by the dialog either.
            assert button.region.height >= 1 and button.region.width >= len("Cancel [n]")
        shown = "\n".join(screen_lines(app))
        assert "Force off [y]" in shown, shown
        assert "Cancel [n]" in shown, shown
        assert "db01" in shown, shown  # the title says what is at stake
        await pilot.press("y")
        await wait_until(pilot, lambda: state_of(app, "db01") is VmState.SHUTOFF)


async def test_notices_do_not_cover_the_buttons() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await loaded(pilot, app)
        await pilot.press("slash", *"db01", "enter", "home", "p")  # a notice pops up
        await wait_until(pilot, lambda: "Pause: running" in "\n".join(screen_lines(app)))
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause(0.2)
        shown = "\n".join(screen_lines(app))
        assert "Force off [y]" in shown and "Cancel [n]" in shown, shown
