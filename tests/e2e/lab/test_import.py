"""An import into the lab's real libvirt storage: ovmtui fetches an ISO from a loopback HTTP
server and streams it with storageVolUpload into h1's storage pool of iso_pool (h1 is the
lab pool's utility host); the file lands whole in the shared storage. A cancelled import
leaves no volume behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ovmtui.import_progress import ImportProgress
from ovmtui.services.imports import Importing
from ovmtui.services.session import EstateSession
from tests.e2e.lab.conftest import Lab
from tests.import_servers import http_server, make_iso, sha256, url_of

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]


async def test_an_iso_streams_into_a_libvirt_volume_and_a_cancel_leaves_none(
    lab: Lab, tmp_path: Path
) -> None:
    storage = Path(lab.estate.pools[0].shared_storage or "")
    iso = make_iso(6 * 1024 * 1024)
    (tmp_path / "labiso.iso").write_bytes(iso)
    async with EstateSession(lab.estate) as session:
        await session.poll_once()
        with http_server(tmp_path) as http:
            pool, plan = session.imports.plan(url_of(http, "labiso.iso"), "iso", sha256=sha256(iso))
            readings: list[ImportProgress] = []
            outcome = await session.imports.run(
                pool, plan, progress=lambda i: readings.append(i.progress)
            )
            assert outcome.ok, outcome.detail
            assert outcome.host == "h1"
            landed = storage / "iso_pool" / "labiso.iso"
            try:
                assert landed.read_bytes() == iso
                assert outcome.imported is not None and outcome.imported.tool == "ovmtui"
                assert readings[-1].phase == "done"
                assert "labiso.iso" in lab.virsh("h1", "vol-list", "ovmtui-lab-iso_pool")
            finally:
                lab.virsh("h1", "vol-delete", "--pool", "ovmtui-lab-iso_pool", "labiso.iso")

            http.slow_pause_s = 0.1  # 6 MiB in 64 KiB pieces: ~10 s
            pool, plan = session.imports.plan(url_of(http, "slow/labiso.iso"), "iso", name="slow")
            moving = asyncio.Event()

            def seen(importing: Importing) -> None:
                if importing.progress.done_bytes > 0:
                    moving.set()

            task = asyncio.create_task(session.imports.run(pool, plan, progress=seen))
            await asyncio.wait_for(moving.wait(), 60)
            (running,) = session.imports.imports
            assert session.imports.cancel(running.id)
            outcome = await asyncio.wait_for(task, 60)
            assert outcome.cancelled, outcome.detail
            assert "slow.iso" not in lab.virsh("h1", "vol-list", "ovmtui-lab-iso_pool")
            assert not (storage / "iso_pool" / "slow.iso").exists()
