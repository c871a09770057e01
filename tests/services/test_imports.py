"""The import service on a fake dom0 (a real sshd, the host's real curl), a real HTTP server:
the library's record moves importing N % -> pending, or -> failed with why; a library that
cannot be written never stops an import; a second import of the same resource is refused;
the operator's cancel is told apart from a failure."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ActionRefused, RepositoryError
from ovmtui.model import EstateSnapshot, HostRole, HostStatus
from ovmtui.operations import Operations
from ovmtui.services.actions import InMemoryJournal
from ovmtui.services.imports import Importing, ImportService
from ovmtui.storage_model import Resource, ResourceStatus
from tests.backend.test_xen_ssh_long import backend_for
from tests.import_servers import http_server, make_iso, url_of
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec

__all__ = ["fake_xen_servers"]  # a pytest fixture


class MemoryLibrary:
    """The library's methods an import uses, in memory, every write kept in order."""

    def __init__(self, *, broken: bool = False) -> None:
        self.records: dict[str, Resource] = {}
        self.writes: list[tuple[ResourceStatus, float | None]] = []
        self.broken = broken

    async def resource(self, pool: str, path: str) -> Resource | None:
        return self.records.get(path)

    async def upsert_resource(self, resource: Resource) -> Resource:
        if self.broken:
            raise RepositoryError("disk full")
        self.records[resource.path] = resource
        self.writes.append((resource.status, resource.percent))
        return resource

    async def set_resource_status(
        self, pool: str, path: str, status: ResourceStatus, **kw: Any
    ) -> Resource:
        current = self.records[path]
        self.records[path] = replace(
            current, status=status, why=kw.get("why"), percent=kw.get("percent")
        )
        self.writes.append((status, kw.get("percent")))
        return self.records[path]


@pytest.fixture
async def service(fake_xen_servers: Any, tmp_path: Path) -> Any:
    server = fake_xen_servers([HostSpec("xen-u", domains=[])])
    host = server.hosts[0]
    storage = tmp_path / "OVS"
    storage.mkdir()
    served = tmp_path / "served"
    served.mkdir()
    (served / "el5.iso").write_bytes(make_iso(3 * 1024 * 1024))
    backend = backend_for(host)
    config = HostConfig("prod", "xen-u", ssh=host.ssh_target, roles=(HostRole.UTILITY,))
    estate = EstateConfig((PoolConfig("prod", (config,), str(storage)),), "test")
    status = HostStatus("prod", "xen-u", host.ssh_target, (HostRole.UTILITY,), reachable=True)
    snapshot = EstateSnapshot((status,))
    journal = InMemoryJournal()
    operations = Operations(user="tester", journal=lambda: journal)

    def make(library: MemoryLibrary) -> ImportService:
        return ImportService(
            estate=estate,
            backend_for=lambda _key: backend,
            snapshot=lambda: snapshot,
            operations=operations,
            jobs=lambda: None,
            library=lambda: library,
        )

    with http_server(served) as http:
        yield make, http, storage
    await backend.close()


async def test_the_record_goes_importing_then_pending(service: Any) -> None:
    make, http, _storage = service
    library = MemoryLibrary()
    imports = make(library)
    pool, plan = imports.plan(url_of(http, "slow/el5.iso"), "iso")
    seen: list[Importing] = []
    outcome = await imports.run(pool, plan, progress=seen.append)
    assert outcome.ok, outcome.detail
    statuses = [status for status, _ in library.writes]
    assert statuses[0] is ResourceStatus.IMPORTING and statuses[-1] is ResourceStatus.PENDING
    percents = [p for s, p in library.writes if s is ResourceStatus.IMPORTING]
    assert percents[0] == 0.0 and len(percents) >= 2  # a slow download: its percent written
    assert percents == sorted(percents)
    (record,) = library.records.values()
    assert (record.status, record.size_bytes, record.imported_by) == (
        ResourceStatus.PENDING,
        3 * 1024 * 1024,
        "tester",
    )
    assert any(i.progress.phase == "downloading" for i in seen)
    assert imports.imports == ()


async def test_a_failure_is_in_the_record_with_why(service: Any) -> None:
    make, http, _storage = service
    library = MemoryLibrary()
    imports = make(library)
    pool, plan = imports.plan(url_of(http, "nowhere.iso"), "iso")
    outcome = await imports.run(pool, plan)
    assert not outcome.ok and not outcome.cancelled
    (record,) = library.records.values()
    assert record.status is ResourceStatus.FAILED and "404" in (record.why or "")


async def test_a_library_that_cannot_be_written_does_not_stop_the_import(service: Any) -> None:
    make, http, storage = service
    imports = make(MemoryLibrary(broken=True))
    pool, plan = imports.plan(url_of(http, "el5.iso"), "iso")
    outcome = await imports.run(pool, plan)
    assert outcome.ok and "not in the library: disk full" in outcome.detail
    assert (storage / "iso_pool/el5/el5.iso").exists()


async def test_the_same_resource_twice_and_the_operators_cancel(service: Any) -> None:
    make, http, storage = service
    library = MemoryLibrary()
    imports = make(library)
    pool, plan = imports.plan(url_of(http, "slow/el5.iso"), "iso")
    moving = asyncio.Event()

    def seen(importing: Importing) -> None:
        if importing.progress.done_bytes > 0:
            moving.set()

    task = asyncio.create_task(imports.run(pool, plan, progress=seen))
    await asyncio.wait_for(moving.wait(), 20)
    with pytest.raises(ActionRefused, match="being imported already"):
        imports.plan(url_of(http, "slow/el5.iso"), "iso")
    (running,) = imports.imports
    assert imports.cancel(running.id)
    outcome = await asyncio.wait_for(task, 20)
    assert outcome.cancelled and "cancelled by the operator" in outcome.detail
    assert not imports.cancel(running.id)  # no longer running
    (record,) = library.records.values()
    assert record.status is ResourceStatus.FAILED and "cancelled" in (record.why or "")
    assert not any(storage.rglob("*.partial"))
