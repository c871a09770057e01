"""The dashboard on the real demo estate (libvirt's test driver), driven by Pilot."""

from __future__ import annotations

from textual.widgets import Input

from ovmtui.model import HostKey, VmAction, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.widgets.estate_header import EstateHeader
from ovmtui.widgets.estate_tree import EstateTree
from ovmtui.widgets.host_panel import HostPanel
from tests.ui.conftest import (
    SIZE,
    dashboard,
    estate_with_dead_host,
    loaded,
    make_app,
    state_of,
    table,
    wait_until,
)


async def focus_vm(pilot, app, name: str) -> None:  # type: ignore[no-untyped-def]
    """Filter down to one VM so the cursor is on it, the way an operator would."""
    await pilot.press("slash")
    box = dashboard(app).query_one("#filter", Input)
    box.value = ""
    await pilot.press(*name)
    await pilot.press("enter")
    for _ in range(5):  # "web01" also matches "dev-web01": step down to the exact one
        cursor = table(app).cursor_vm
        if cursor is not None and cursor.vm.name == name:
            return
        await pilot.press("down")
    raise AssertionError(f"cursor never reached {name}")


async def test_tree_lists_pools_and_hosts_and_scopes_the_table() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        tree = dashboard(app).query_one(EstateTree)
        labels = [label for label in tree.labels() if " up · " in label]  # the pools
        assert labels[0].startswith("prod") and "3/3 up" in labels[0]
        assert labels[1].startswith("dev") and "2/2 up" in labels[1]
        assert table(app).row_count == 64
        assert tree.select_host(HostKey("dev", "dev02"))
        await wait_until(pilot, lambda: table(app).row_count == 10, what="scope to dev02")
        assert {table(app).cursor_vm.host} == {"dev02"}  # type: ignore[union-attr]
        panel = dashboard(app).query_one(HostPanel)
        assert panel.host is not None and panel.host.name == "dev02"


async def test_filter_is_incremental_and_escape_clears_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("slash")
        assert app.focused is dashboard(app).query_one("#filter", Input)
        await pilot.press("w", "e", "b")
        await wait_until(pilot, lambda: 0 < table(app).row_count < 64)
        names = {table(app)._rows.get(u).vm.name for u in table(app).shown_uuids()}  # type: ignore[union-attr]
        assert names and all("web" in n for n in names)
        await pilot.press("escape")
        assert table(app).row_count == 64
        # Filter by state and by host too.
        await pilot.press("slash", *"crashed")
        await wait_until(pilot, lambda: table(app).row_count == 2)
        await pilot.press("escape", "slash", *"dev02")
        await wait_until(pilot, lambda: table(app).row_count == 10)


async def test_sort_key_cycles_columns() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert table(app).sort_column == "name"
        await pilot.press("o")
        assert table(app).sort_column == "state"
        await pilot.press("O")
        assert table(app).sort_reverse is True


async def test_pause_resume_without_confirmation_shows_the_command() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, "web01")
        assert state_of(app, "web01") is VmState.RUNNING
        await pilot.press("p")
        await wait_until(
            pilot, lambda: state_of(app, "web01") is VmState.PAUSED, what="web01 paused"
        )
        notes = [n.message for n in app._notifications]
        assert any(
            m.startswith("virsh -c test:///") and m.endswith("suspend web01") for m in notes
        ), notes
        # The cursor stayed on its VM across the refresh.
        assert table(app).cursor_vm.vm.name == "web01"  # type: ignore[union-attr]
        await pilot.press("u")
        await wait_until(pilot, lambda: state_of(app, "web01") is VmState.RUNNING)
        await pilot.press("r")
        await wait_until(pilot, lambda: any(r.action.value == "reboot" for r in app.action_log))
        assert all(r.ok for r in app.action_log)


async def test_shutdown_then_start() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, "web02")
        await pilot.press("x")
        await wait_until(pilot, lambda: state_of(app, "web02") is VmState.SHUTOFF)
        await pilot.press("s")
        await wait_until(pilot, lambda: state_of(app, "web02") is VmState.RUNNING)


async def test_force_off_asks_and_cancel_changes_nothing() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, "db01")
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        text = " ".join(str(w.render()) for w in app.screen.query("Static, Label"))
        assert "Force off db01 on ovs01?" in text
        assert "destroy db01" in text
        assert "power cord" in text
        await pilot.press("n")
        await pilot.pause(0.3)
        assert state_of(app, "db01") is VmState.RUNNING
        assert app.action_log == ()
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")  # the default button is Cancel: enter is safe
        await pilot.pause(0.3)
        assert state_of(app, "db01") is VmState.RUNNING
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: state_of(app, "db01") is VmState.SHUTOFF)
        assert [(r.action.value, r.ok) for r in app.action_log] == [("force-off", True)]


async def test_host_error_is_a_readable_notification() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        # Start on a VM suspended to RAM asks libvirt to wake it, which the test driver
        # refuses: a real error from a real libvirt.
        await focus_vm(pilot, app, "ci-runner-03")
        assert state_of(app, "ci-runner-03") is VmState.SUSPENDED
        await pilot.press("s")
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        result = app.action_log[0]
        assert not result.ok
        assert result.error and "support" in result.error
        assert "Traceback" not in result.error
        notes = [n.message for n in app._notifications]
        assert result.error in notes
        assert state_of(app, "ci-runner-03") is VmState.SUSPENDED


async def test_bulk_marks_and_force_off_all_shown() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("slash", *"ci-runner", "enter")
        await wait_until(pilot, lambda: table(app).row_count == 6)
        await pilot.press("asterisk")
        assert len(table(app).marked) == 6
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        text = " ".join(str(w.render()) for w in app.screen.query("Static, Label"))
        assert "Force off 6 VMs?" in text
        await pilot.press("y")
        await wait_until(pilot, lambda: len(app.action_log) == 6, what="six results")
        await wait_until(
            pilot,
            lambda: all(state_of(app, f"ci-runner-0{i}") is VmState.SHUTOFF for i in range(1, 7)),
            what="all runners off",
        )
        assert table(app).marked == frozenset()


async def test_read_only_hides_and_refuses_every_action() -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        header = dashboard(app).query_one(EstateHeader)
        assert "READ-ONLY" in str(header.render())
        screen = dashboard(app)
        for action in ("start", "shutdown", "reboot", "pause", "resume", "force-off"):
            assert screen.check_action("vm", (action,)) is False
        await focus_vm(pilot, app, "web01")
        await pilot.press("K", "p", "x")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmDialog)
        assert state_of(app, "web01") is VmState.RUNNING
        assert app.action_log == ()
        # The service refuses too, whatever the UI does.
        placed = table(app).cursor_vm
        assert placed is not None
        assert "read-only" in (app.refusal(placed, VmAction.FORCE_OFF) or "")


async def test_unreachable_host_is_marked_and_others_still_show() -> None:
    app = make_app(estate_with_dead_host())
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, hosts=2)
        dead = app.snapshot.host(HostKey("prod", "dead01"))
        assert dead is not None and dead.reachable is False and dead.error
        assert table(app).row_count == 13  # ovs01's VMs are all there
        header = str(dashboard(app).query_one(EstateHeader).render())
        assert "1 down" in header
        tree = dashboard(app).query_one(EstateTree)
        assert tree.select_host(HostKey("prod", "dead01"))
        await pilot.pause()
        panel = dashboard(app).query_one(HostPanel)
        assert panel.host is not None and panel.host.name == "dead01"
        assert "unreachable" in str(panel.render())
        assert "127.0.0.1:1" in str(panel.render())


async def test_palette_offers_actions_and_hosts_by_name() -> None:
    from ovmtui.commands import EstateCommands

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        provider = EstateCommands(app.screen)
        commands = {c.text: c for c in provider._commands(dashboard(app))}
        assert "Open host ovs02" in commands
        assert "Refresh every host now" in commands and "Show the action log" in commands
        assert provider.refusal(dashboard(app), commands["Force off web01"]) is None
        # Shut off: start is offered; running: start is listed with the reason it cannot.
        assert provider.refusal(dashboard(app), commands["Start backup-proxy01"]) is None
        refusal = provider.refusal(dashboard(app), commands["Start web01"])
        assert refusal == "cannot start a VM that is running"
        # Run one through the screen, as the palette would.
        dashboard(app).open_host(HostKey("dev", "dev01"))
        await wait_until(pilot, lambda: table(app).row_count == 12)


async def test_question_mark_toggles_the_key_panel() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.query("HelpPanel")
        await pilot.press("question_mark")
        await pilot.pause()
        assert not app.screen.query("HelpPanel")
