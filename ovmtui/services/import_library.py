"""An import's record in the pool's library (``resources``): importing with its percent while
it runs, pending (waiting for approval) once in place, failed with why.

The library is a record, not the import's condition: a repository that cannot take a write
never stops an import; what could not be written is said (``ImportRecords.unrecorded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from ovmtui.errors import OvmError
from ovmtui.import_plan import Imported, ImportKind, ImportPlan
from ovmtui.import_progress import ImportProgress
from ovmtui.storage_model import Resource, ResourceKind, ResourceStatus

# A record's percent is written at most this often: the screen reads it, not a graph.
WRITE_EVERY_S: Final = 1.0
KINDS: Final[dict[ImportKind, ResourceKind]] = {
    "iso": ResourceKind.ISO,
    "template": ResourceKind.TEMPLATE,
    "image": ResourceKind.SHARED_DISK,
}


class Library(Protocol):
    """What an import writes of the library (the repository's methods)."""

    async def resource(self, pool: str, path: str) -> Resource | None: ...

    async def upsert_resource(self, resource: Resource) -> Resource: ...

    async def set_resource_status(
        self,
        pool: str,
        path: str,
        status: ResourceStatus,
        *,
        why: str | None = None,
        percent: float | None = None,
        by: str | None = None,
        at: float | None = None,
    ) -> Resource: ...


class ImportRecords:
    """The library's record of one import, kept up to date as it runs."""

    def __init__(
        self,
        library: Library | None,
        pool: str,
        plan: ImportPlan,
        *,
        user: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._library = library
        self._pool = pool
        self._plan = plan
        self._user = user
        self._clock = clock
        self._begun = False
        self._written_at = float("-inf")
        self._percent: float | None = None
        self._writing: asyncio.Task[None] | None = None
        self.unrecorded: str | None = None  # the first write that failed, why

    async def begin(self) -> None:
        """The record, importing 0 %: new, or replacing an earlier attempt's."""
        plan = self._plan
        now = time.time()
        await self._write(
            lambda library: library.upsert_resource(
                Resource(
                    KINDS[plan.kind],
                    self._pool,
                    plan.final,
                    plan.name,
                    ResourceStatus.IMPORTING,
                    sha256=plan.sha256,
                    percent=0.0,
                    source_url=plan.url,
                    imported_by=self._user,
                    imported_at=now,
                )
            )
        )
        self._begun = self._library is not None and self.unrecorded is None

    def progress(self, reading: ImportProgress) -> None:
        """A reading: its percent written when it changed, once a second at most, one write
        at a time (a slow repository skips readings, never queues them)."""
        percent = reading.percent
        if not self._begun or percent is None or percent == self._percent:
            return
        now = self._clock()
        if now - self._written_at < WRITE_EVERY_S or self._writing is not None:
            return
        self._written_at, self._percent = now, percent
        self._writing = asyncio.ensure_future(self._write_percent(float(percent)))

    async def _write_percent(self, percent: float) -> None:
        try:
            await self._write(
                lambda library: library.set_resource_status(
                    self._pool, self._plan.final, ResourceStatus.IMPORTING, percent=percent
                )
            )
        finally:
            self._writing = None

    async def done(self, imported: Imported) -> None:
        """In place: pending, its size and (when checked) its SHA-256."""
        await self._settle()
        if not self._begun:
            return
        plan = self._plan

        async def pending(library: Library) -> object:
            current = await library.resource(self._pool, plan.final)
            if current is None:
                return None
            return await library.upsert_resource(
                Resource(
                    current.kind,
                    current.pool,
                    current.path,
                    current.name,
                    ResourceStatus.PENDING,
                    size_bytes=imported.size_bytes,
                    sha256=imported.sha256 or current.sha256,
                    source_url=current.source_url,
                    imported_by=current.imported_by,
                    imported_at=time.time(),
                    id=current.id,
                )
            )

        await self._write(pending)

    async def failed(self, why: str) -> None:
        """Failed, with why (nothing of it is left on the storage)."""
        await self._settle()
        if not self._begun:
            return
        await self._write(
            lambda library: library.set_resource_status(
                self._pool, self._plan.final, ResourceStatus.FAILED, why=why
            )
        )

    async def _settle(self) -> None:
        writing = self._writing
        if writing is not None:
            with contextlib.suppress(Exception):
                await writing

    async def _write(self, write: Callable[[Library], Awaitable[object]]) -> None:
        library = self._library
        if library is None:
            return
        try:
            await write(library)
        except OvmError as exc:
            if self.unrecorded is None:
                self.unrecorded = exc.message
