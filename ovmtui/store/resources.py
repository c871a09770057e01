"""The library of storage resources in the repository (the ``resources`` table, schema 4).

Functions of an open transaction's connection; ``Repository`` wraps each in its own
transaction. One record per (pool, path); a file that left the storage keeps its record,
flagged ``missing_since`` (and unflagged when it comes back): the library never forgets
silently what was registered, imported or approved.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import aiosqlite

from ovmtui.errors import RepositoryError
from ovmtui.storage_model import Resource, ResourceKind, ResourceStatus
from ovmtui.store.schema import fetch_rows

# Literal queries (no SQL is ever built from values): the columns in ``_resource``'s order.
_SELECT_POOL = """
SELECT id, kind, pool, path, name, size, sha256, status, why, source_url, percent,
       registered_by, registered_at, imported_by, imported_at, approved_by, approved_at,
       missing_since
FROM resources WHERE (? IS NULL OR pool = ?) ORDER BY pool, kind, name, path
"""

_SELECT_ONE = """
SELECT id, kind, pool, path, name, size, sha256, status, why, source_url, percent,
       registered_by, registered_at, imported_by, imported_at, approved_by, approved_at,
       missing_since
FROM resources WHERE pool = ? AND path = ?
"""

_UPSERT = """
INSERT INTO resources (kind, pool, path, name, size, sha256, status, why, source_url, percent,
                       registered_by, registered_at, imported_by, imported_at, approved_by,
                       approved_at, missing_since)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, path) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, size = excluded.size,
    sha256 = excluded.sha256, status = excluded.status, why = excluded.why,
    source_url = excluded.source_url, percent = excluded.percent,
    registered_by = excluded.registered_by, registered_at = excluded.registered_at,
    imported_by = excluded.imported_by, imported_at = excluded.imported_at,
    approved_by = excluded.approved_by, approved_at = excluded.approved_at,
    missing_since = excluded.missing_since
"""


def _resource(row: Sequence[Any]) -> Resource:
    (id_, kind, pool, path, name, size, sha256, status, why, url, percent, *by) = row
    try:
        kind_value, status_value = ResourceKind(kind), ResourceStatus(status)
    except ValueError as exc:
        raise RepositoryError(f"resource {pool}:{path}: {exc}") from None
    return Resource(
        kind=kind_value,
        pool=pool,
        path=path,
        name=name,
        status=status_value,
        size_bytes=size,
        sha256=sha256,
        why=why,
        percent=percent,
        source_url=url,
        registered_by=by[0],
        registered_at=by[1],
        imported_by=by[2],
        imported_at=by[3],
        approved_by=by[4],
        approved_at=by[5],
        missing_since=by[6],
        id=id_,
    )


async def list_resources(db: aiosqlite.Connection, pool: str | None) -> list[Resource]:
    rows = await fetch_rows(db, _SELECT_POOL, (pool, pool))
    return [_resource(row) for row in rows]


async def get_resource(db: aiosqlite.Connection, pool: str, path: str) -> Resource | None:
    rows = await fetch_rows(db, _SELECT_ONE, (pool, path))
    return _resource(rows[0]) if rows else None


async def upsert_resource(db: aiosqlite.Connection, resource: Resource) -> Resource:
    r = resource
    await db.execute(
        _UPSERT,
        (
            r.kind.value,
            r.pool,
            r.path,
            r.name,
            r.size_bytes,
            r.sha256,
            r.status.value,
            r.why,
            r.source_url,
            r.percent,
            r.registered_by,
            r.registered_at,
            r.imported_by,
            r.imported_at,
            r.approved_by,
            r.approved_at,
            r.missing_since,
        ),
    )
    stored = await get_resource(db, r.pool, r.path)
    assert stored is not None  # just written in this transaction
    return stored


async def set_status(
    db: aiosqlite.Connection,
    pool: str,
    path: str,
    status: ResourceStatus,
    *,
    why: str | None,
    percent: float | None,
    by: str | None,
    at: float,
) -> Resource:
    """The record's new status; approving records who and when (``by``, ``at``)."""
    current = await get_resource(db, pool, path)
    if current is None:
        raise RepositoryError(f"{path}: not in the library of pool {pool}")
    approved = status is ResourceStatus.APPROVED
    await db.execute(
        "UPDATE resources SET status = ?, why = ?, percent = ?, "
        "approved_by = CASE WHEN ? THEN ? ELSE approved_by END, "
        "approved_at = CASE WHEN ? THEN ? ELSE approved_at END "
        "WHERE pool = ? AND path = ?",
        (status.value, why, percent, approved, by, approved, at, pool, path),
    )
    updated = await get_resource(db, pool, path)
    assert updated is not None
    return updated


async def flag_missing(
    db: aiosqlite.Connection,
    pool: str,
    present: Collection[str],
    *,
    kinds: Collection[ResourceKind],
    at: float,
) -> tuple[list[Resource], list[Resource]]:
    """Flag the pool's records of ``kinds`` whose path is not in ``present`` (a reading of
    those kinds' folders), and unflag those that came back. Records still importing are left
    alone (their file is not there yet). Returns (newly missing, back)."""
    records = [r for r in await list_resources(db, pool) if r.kind in kinds]
    gone = [
        r
        for r in records
        if r.path not in present and r.missing_since is None
        if r.status is not ResourceStatus.IMPORTING
    ]
    back = [r for r in records if r.path in present and r.missing_since is not None]
    for resource, value in [*((r, at) for r in gone), *((r, None) for r in back)]:
        await db.execute(
            "UPDATE resources SET missing_since = ? WHERE id = ?", (value, resource.id)
        )
    return gone, back


async def delete_resource(db: aiosqlite.Connection, pool: str, path: str) -> bool:
    cursor = await db.execute("DELETE FROM resources WHERE pool = ? AND path = ?", (pool, path))
    return (cursor.rowcount or 0) > 0
