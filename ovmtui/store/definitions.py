"""The repository's kept definitions: their versions and where each was last seen (schema _V4).

Pure SQL on a connection the ``Repository`` hands over inside one of its transactions; the
``Repository`` methods of the same names are the API. What to write (what changed) is
decided by ``services/definition_keeper.py``, which remembers the latest hashes, so that an
idle estate costs no query at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from ovmtui.model import DefinitionKind
from ovmtui.store.schema import fetch_rows


@dataclass(frozen=True, slots=True)
class DefinitionVersion:
    """One recorded version of a definition (``id`` 0: not written yet)."""

    kind: DefinitionKind
    uuid: str
    pool: str
    host: str
    name: str
    sha256: str
    at: float
    text: str
    id: int = 0

    @property
    def short(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True, slots=True)
class DefinitionPlace:
    """Where a definition was last seen, in which state (VMs: active; networks and pools:
    running), with which version (``sha256``), since when (``since``: when this changed).

    A VM that moved keeps its place on each host it was seen on: the newest is where it is;
    ``moved_to`` (read by ``places_on`` only) names the host of a newer one ("pool/host").
    """

    kind: DefinitionKind
    uuid: str
    pool: str
    host: str
    name: str
    sha256: str | None
    active: bool
    since: float
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class DefinitionChanges:
    """What one poll changed: new versions, and places to write."""

    versions: tuple[DefinitionVersion, ...] = ()
    places: tuple[DefinitionPlace, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.versions or self.places)


@dataclass(frozen=True, slots=True)
class DefinitionIndex:
    """What the keeper starts from: the latest version of each definition, every place."""

    latest: tuple[DefinitionVersion, ...]  # ``text`` left empty: only the hashes matter
    places: tuple[DefinitionPlace, ...]


_SELECT_PLACES = "SELECT kind, uuid, pool, host, name, sha256, active, since FROM definition_places"
_SELECT_VERSIONS = (
    "SELECT kind, uuid, pool, host, name, sha256, at, text, id FROM definition_versions"
)


async def write_changes(db: aiosqlite.Connection, changes: DefinitionChanges) -> None:
    await db.executemany(
        "INSERT INTO definition_versions (kind, uuid, pool, host, name, sha256, at, text) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (v.kind.value, v.uuid, v.pool, v.host, v.name, v.sha256, v.at, v.text)
            for v in changes.versions
        ],
    )
    await db.executemany(
        "INSERT INTO definition_places (kind, uuid, pool, host, name, sha256, active, since) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, uuid, pool, host) DO UPDATE SET name = excluded.name, "
        "sha256 = excluded.sha256, active = excluded.active, since = excluded.since",
        [
            (p.kind.value, p.uuid, p.pool, p.host, p.name, p.sha256, int(p.active), p.since)
            for p in changes.places
        ],
    )


async def read_index(db: aiosqlite.Connection) -> DefinitionIndex:
    rows = await fetch_rows(
        db,
        "SELECT kind, uuid, pool, host, name, sha256, at, '', id FROM definition_versions "
        "WHERE id IN (SELECT MAX(id) FROM definition_versions GROUP BY kind, uuid, "
        "CASE kind WHEN 'domain' THEN '' ELSE pool END, "
        "CASE kind WHEN 'domain' THEN '' ELSE host END) ORDER BY id",
    )
    places = await fetch_rows(db, _SELECT_PLACES)
    return DefinitionIndex(tuple(_version(r) for r in rows), tuple(_place(r) for r in places))


async def versions_of(
    db: aiosqlite.Connection, kind: DefinitionKind, uuid: str
) -> list[DefinitionVersion]:
    rows = await fetch_rows(
        db,
        _SELECT_VERSIONS + " WHERE kind = ? AND uuid = ? ORDER BY id",
        (kind.value, uuid.lower()),
    )
    return [_version(row) for row in rows]


async def domains_named(db: aiosqlite.Connection, text: str) -> list[tuple[str, str]]:
    """(UUID, latest name) of the VMs whose UUID is ``text`` or whose latest name is."""
    rows = await fetch_rows(
        db,
        "SELECT uuid, name FROM definition_versions WHERE id IN (SELECT MAX(id) FROM "
        "definition_versions WHERE kind = 'domain' GROUP BY uuid) AND (uuid = ? OR name = ?) "
        "ORDER BY name, uuid",
        (text.lower(), text),
    )
    return [(row[0], row[1]) for row in rows]


async def places_on(db: aiosqlite.Connection, pool: str, host: str) -> list[DefinitionPlace]:
    rows = await fetch_rows(
        db,
        "SELECT p.kind, p.uuid, p.pool, p.host, p.name, p.sha256, p.active, p.since, "
        "(SELECT q.pool || '/' || q.host FROM definition_places q WHERE q.kind = 'domain' "
        "AND q.kind = p.kind AND q.uuid = p.uuid AND q.since > p.since "
        "ORDER BY q.since DESC LIMIT 1) "
        "FROM definition_places p WHERE p.pool = ? AND p.host = ? ORDER BY p.kind, p.name",
        (pool, host),
    )
    return [_place(row[:8], moved_to=row[8]) for row in rows]


async def version_with(
    db: aiosqlite.Connection, kind: DefinitionKind, uuid: str, sha256: str
) -> DefinitionVersion | None:
    rows = await fetch_rows(
        db,
        _SELECT_VERSIONS + " WHERE kind = ? AND uuid = ? AND sha256 = ? ORDER BY id DESC LIMIT 1",
        (kind.value, uuid, sha256),
    )
    return _version(rows[0]) if rows else None


def _version(row: Sequence[object]) -> DefinitionVersion:
    kind, uuid, pool, host, name, sha256, at, text, id_ = row
    return DefinitionVersion(
        DefinitionKind(str(kind)),
        str(uuid),
        str(pool),
        str(host),
        str(name),
        str(sha256),
        float(at),  # type: ignore[arg-type]
        str(text),
        int(id_),  # type: ignore[call-overload]
    )


def _place(row: Sequence[object], *, moved_to: object = None) -> DefinitionPlace:
    kind, uuid, pool, host, name, sha256, active, since = row
    return DefinitionPlace(
        DefinitionKind(str(kind)),
        str(uuid),
        str(pool),
        str(host),
        str(name),
        None if sha256 is None else str(sha256),
        bool(active),
        float(since),  # type: ignore[arg-type]
        None if moved_to is None else str(moved_to),
    )
