"""Quitting (q, or SIGTERM/SIGHUP/SIGINT, which end the app the same way) while an action
runs: the action's journal record says it was interrupted, not "started, no result"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.model import Vm, VmAction
from ovmtui.store.repository import Repository
from tests.ui.conftest import SIZE, make_app, table, wait_until


async def test_quitting_records_running_actions_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never_answers(self: LibvirtBackend, vm: Vm, action: VmAction) -> None:
        await asyncio.Event().wait()  # a host that took the request and went quiet

    monkeypatch.setattr(LibvirtBackend, "act", never_answers)
    path = tmp_path / "repository.sqlite"
    app = make_app(repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("slash", *"kafka01", "enter", "p")
        repo = app.repository
        assert repo is not None

        async def started() -> bool:
            return any(e.vm == "kafka01" for e in await repo.journal_entries())

        for _ in range(200):
            if await started():
                break
            await pilot.pause(0.02)
        else:
            raise AssertionError("the pause was never journaled as started")
        await pilot.press("q")
    repo = await Repository.open(path, read_only=True)
    try:
        entries = await repo.journal_entries()
    finally:
        await repo.close()
    [entry] = [e for e in entries if e.vm == "kafka01"]
    assert entry.ok is False, entry
    assert "interrupted" in (entry.detail or "") and "check the VM" in (entry.detail or "")
