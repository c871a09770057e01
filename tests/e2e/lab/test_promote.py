"""The pool's master dies: the dashboard says so and keeps driving the other host; `P` on
h2 moves the master role to it (the estate file and the running estate), with the reason
on the record; h2's guest is driven all along. On the real lab (h1's libvirtd killed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ovmtui.app import OvmApp
from ovmtui.model import HostRole, VmAction
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
            vm3 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "vm3")
            (paused,) = await app.session.run_actions([vm3], VmAction.PAUSE)
            assert paused.ok, paused.error
            assert await asyncio.to_thread(lab.domstate, "h2", "vm3") == "paused"
            (resumed,) = await app.session.run_actions([vm3], VmAction.RESUME)
            assert resumed.ok, resumed.error

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
            (paused,) = await app.session.run_actions([vm3], VmAction.PAUSE)
            assert paused.ok, paused.error
            (resumed,) = await app.session.run_actions([vm3], VmAction.RESUME)
            assert resumed.ok, resumed.error
        finally:
            await asyncio.to_thread(lab.start_libvirtd, "h1")
    assert await asyncio.to_thread(lab.domstate, "h2", "vm3") == "running"
