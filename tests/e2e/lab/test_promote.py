"""The pool's master dies: the dashboard says so and keeps driving the other host; `P` on
h2 moves the master role to it (the estate file and the running estate), with the reason
on the record; h2's guest is driven all along. On the real lab (h1's libvirtd killed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from ovmtui.app import OvmApp
from ovmtui.model import HostRole, VmAction
from ovmtui.screens.connection_test import ConnectionTestScreen
from ovmtui.store.estate_file import EstateFile
from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import SIZE, host_status, loaded, tree_labels
from tests.ui.conftest import dashboard, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

INTERVAL_S = 1.0


def _copy(lab: Lab, directory: Path) -> Path:
    """The lab's estate file, copied: the test edits its copy, never the lab's own."""
    path = directory / "estate.toml"
    path.write_text(lab.estate_path.read_text())
    return path


def _read(path: Path) -> str:
    return path.read_text()


async def pause_and_resume(pilot: Pilot[object], app: OvmApp, lab: Lab) -> None:
    """vm3 (on h2) paused, seen paused by the dashboard and on h2, then resumed."""
    for action, state in ((VmAction.PAUSE, "paused"), (VmAction.RESUME, "running")):
        vm3 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "vm3")
        (result,) = await app.session.run_actions([vm3], action)
        assert result.ok, result.error
        await wait_until(
            pilot,
            lambda state=state: any(  # type: ignore[misc]
                p.vm.name == "vm3" and p.vm.state.value == state for p in app.snapshot.placed_vms()
            ),
            limit_s=20,
            what=f"vm3 {state}",
        )
        assert await asyncio.to_thread(lab.domstate, "h2", "vm3") == state


async def test_promote_h2_while_h1_is_down_and_h2_is_still_driven(lab: Lab, tmp_path: Path) -> None:
    path = _copy(lab, tmp_path)
    file = EstateFile.read(path)
    roles = {h.name: h.roles for h in file.estate.hosts}
    assert HostRole.MASTER in roles["h1"] and HostRole.MASTER not in roles["h2"]
    app = OvmApp(file.estate, estate_file=file, interval_s=INTERVAL_S)  # no repository
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await asyncio.to_thread(lab.kill_libvirtd, "h1")
        try:
            await wait_until(
                pilot,
                lambda: host_status(app, "h1").reachable is False,
                limit_s=20,
                what="h1 to turn unreachable",
            )
            await wait_until(
                pilot,
                lambda: "master h1 unreachable for" in tree_labels(app)[0],
                what="the pool to say its master is down",
            )
            # Still driven directly: h2's guest pauses and resumes with its master gone.
            await pause_and_resume(pilot, app, lab)

            # P on h2: the reason typed, the role moved.
            board = dashboard(app)
            assert board.estate_tree.select_host(host_status(app, "h2").key)
            await wait_until(pilot, lambda: board._scope.host == "h2", what="h2 selected")
            assert board.estate_refusal("promote_host") is None
            await pilot.press("P")
            await wait_until(
                pilot, lambda: app.screen.query("#promote-reason"), what="the promote form"
            )
            await pilot.press(*"h1 libvirtd dead", "enter")
            await wait_until(
                pilot,
                lambda: HostRole.MASTER in host_status(app, "h2").roles,
                what="h2 the master",
            )
            edited = {h.name: h.roles for h in EstateFile.read(path).estate.hosts}
            assert edited["h2"][0] is HostRole.MASTER
            assert HostRole.MASTER not in edited["h1"]
            assert "# The lab's estate" in _read(path)  # the file's comments kept
            await wait_until(
                pilot,
                lambda: "master h1" not in tree_labels(app)[0],
                what="the pool's line without the dead master",
            )
            records = app.session.actions.journal.records  # type: ignore[union-attr]
            assert any("reason: h1 libvirtd dead" in str(r) for r in records)
            # And h2 is still driven, now its pool's master.
            await pause_and_resume(pilot, app, lab)
        finally:
            await asyncio.to_thread(lab.start_libvirtd, "h1")
    assert await asyncio.to_thread(lab.domstate, "h2", "vm3") == "running"


async def test_the_labs_hosts_added_to_an_empty_pool_from_the_tui(lab: Lab, tmp_path: Path) -> None:
    """An estate of one empty pool; `A` twice, the lab's URIs typed, Test connection
    passing for each: both hosts polled and their guests shown without a restart, the file
    written as an operator would."""
    path = tmp_path / "estate.toml"
    storage = lab.estate.pools[0].shared_storage
    path.write_text(
        f'# built from the TUI\n[[pools]]\nname = "lab"\nshared_storage = "{storage}"\n'
    )
    file = EstateFile.read(path)
    app = OvmApp(file.estate, estate_file=file, interval_s=INTERVAL_S)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.snapshot.pools == ("lab",), what="the empty pool")
        board = dashboard(app)
        assert "lab  no hosts yet" in board.estate_tree.labels()
        for host in lab.estate.hosts:
            # The pool under the tree's cursor: its line is the first below the root.
            await pilot.press("t", "home", "down")
            await wait_until(pilot, lambda: board._scope.pool == "lab", what="the pool")
            await pilot.press("A")
            await wait_until(pilot, lambda: app.screen.query("#host-name"), what="the form")
            app.screen.query_one("#host-name", Input).value = host.name
            app.screen.query_one("#host-libvirt", Input).value = host.libvirt or ""
            app.screen.query_one("#role-vm", Checkbox).value = True
            form = app.screen
            # Test connection first: every check of the host as typed passes.
            await pilot.click("#host-test")
            await wait_until(
                pilot, lambda: isinstance(app.screen, ConnectionTestScreen), what="the test"
            )
            test = app.screen
            assert isinstance(test, ConnectionTestScreen)
            await wait_until(
                pilot,
                lambda test=test: test.report is not None,  # type: ignore[misc]
                limit_s=60,
                what="the checks",
            )
            assert test.report is not None and test.report.passed, test.report
            await pilot.press("escape")
            await wait_until(
                pilot,
                lambda form=form: app.screen is form,  # type: ignore[misc]
                what="back to the form",
            )
            result = str(form.query_one("#host-test-result", Static).render())
            assert result.startswith("Test connection passed"), result
            await pilot.press("ctrl+s")
            await wait_until(
                pilot,
                lambda name=host.name: any(  # type: ignore[misc]
                    h.name == name and h.reachable for h in app.snapshot.hosts
                ),
                limit_s=30,
                what=f"{host.name} polled",
            )
        await loaded(pilot, app)
        names = {p.vm.name for p in app.snapshot.placed_vms()}
        assert {"vm1", "vm2", "vm3"} <= names
    text = _read(path)
    assert text.startswith("# built from the TUI\n")
    assert [h.name for h in EstateFile.read(path).estate.hosts] == ["h1", "h2"]
