"""VM lifecycle keys on a real guest: the dashboard follows the hypervisor within one refresh.

Every action goes through the UI as an operator would do it: filter to the VM, press the
action's key (force off asks first: y), then watch the row's state.
"""

from __future__ import annotations

import pytest

from ovmtui.screens.dialogs import ConfirmDialog
from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import SIZE, focus_vm, follows, lab_app, loaded, shown_state
from tests.ui.conftest import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]


async def test_start_shutdown_force_off_pause_resume_follow_within_one_refresh(lab: Lab) -> None:
    vm, host = "vm2", "h1"
    app = lab_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, vm)
        assert shown_state(app, vm) == "running"

        await pilot.press("p")
        await follows(pilot, app, vm, host, shown="paused", libvirt="paused")

        await pilot.press("u")
        await follows(pilot, app, vm, host, shown="running", libvirt="running")

        # A graceful shutdown: the guest hears the ACPI power button and powers off.
        await pilot.press("x")
        await follows(pilot, app, vm, host, shown="shutoff", libvirt="shut off", limit_s=30)

        await pilot.press("s")
        await follows(pilot, app, vm, host, shown="running", libvirt="running")

        await pilot.press("K")
        await wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation"
        )
        await pilot.press("y")
        await follows(pilot, app, vm, host, shown="shutoff", libvirt="shut off")

        # Leave the lab as it was found: the guest running.
        await pilot.press("s")
        await follows(pilot, app, vm, host, shown="running", libvirt="running")

        results = [(r.action.value, r.ok, r.error) for r in app.action_log]
        assert results == [
            (action, True, None)
            for action in ("pause", "resume", "shutdown", "start", "force-off", "start")
        ], results
    # The other guests were not touched.
    assert lab.domstate("h1", "vm1") == "running"
    assert lab.domstate("h2", "vm3") == "running"
