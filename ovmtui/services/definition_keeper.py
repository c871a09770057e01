"""What of a poll's definitions the repository must write: only what changed.

Polls read a definition only when it may have changed (the libvirt backend: first seen, or a
lifecycle or device event named it), hashed on the backend's worker. The keeper remembers
the latest hash of every definition and where each was last seen, loaded from the
repository once, so that deciding costs a dict lookup per definition read and an idle estate
writes nothing and reads nothing. Pure Python, no I/O: the session writes what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ovmtui.model import Definition, DefinitionKind, HostKey, HostPoll
from ovmtui.store.definitions import (
    DefinitionChanges,
    DefinitionIndex,
    DefinitionPlace,
    DefinitionVersion,
)

# A VM's versions follow its UUID from host to host; a network's or a pool's are its host's.
Scope = tuple[DefinitionKind, str, str, str]
PlaceKey = tuple[DefinitionKind, str, str, str]  # kind, uuid, pool, host


def scope_of(kind: DefinitionKind, uuid: str, pool: str, host: str) -> Scope:
    if kind is DefinitionKind.DOMAIN:
        return (kind, uuid, "", "")
    return (kind, uuid, pool, host)


class DefinitionKeeper:
    """The latest hash of each kept definition and each one's place, in memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._latest: dict[Scope, str] = {}
        self._places: dict[PlaceKey, DefinitionPlace] = {}
        self._vm_place: dict[str, PlaceKey] = {}  # a VM's one place, by UUID
        self.loaded = False

    def load(self, index: DefinitionIndex) -> None:
        """Start from what the repository holds (at each repository open)."""
        self._latest = {scope_of(v.kind, v.uuid, v.pool, v.host): v.sha256 for v in index.latest}
        self._places.clear()
        self._vm_place.clear()
        self._remember(index.places)
        self.loaded = True

    def latest(self, kind: DefinitionKind, uuid: str, pool: str = "", host: str = "") -> str | None:
        """The latest recorded hash of a definition (networks, pools: of that host's)."""
        return self._latest.get(scope_of(kind, uuid.lower(), pool, host))

    def place(self, uuid: str) -> DefinitionPlace | None:
        """Where a VM was last seen (by its kept definition): its newest place."""
        key = self._vm_place.get(uuid.lower())
        return None if key is None else self._places.get(key)

    def offered(self, host: HostKey, poll: HostPoll) -> DefinitionChanges:
        """The versions and places ``poll``'s definitions change (empty: nothing to write).

        Remembered at once: the caller writes them, and calls ``forget`` if it cannot.
        """
        if not poll.definitions:
            return DefinitionChanges()
        active = {vm.uuid.lower(): vm.state.is_active for vm in poll.vms}
        now = self._clock()
        versions: list[DefinitionVersion] = []
        places: list[DefinitionPlace] = []
        for definition in poll.definitions:
            scope = scope_of(definition.kind, definition.uuid, host.pool, host.name)
            if self._latest.get(scope) != definition.sha256:
                self._latest[scope] = definition.sha256
                versions.append(_version(definition, host, now))
            running = (
                active.get(definition.uuid, False)
                if definition.kind is DefinitionKind.DOMAIN
                else definition.active
            )
            key = (definition.kind, definition.uuid, host.pool, host.name)
            old = self._places.get(key)
            if old is not None and definition.kind is DefinitionKind.DOMAIN:
                # Still where it was: but it may have been seen elsewhere meanwhile.
                moved = self._vm_place.get(definition.uuid) != key
            else:
                moved = definition.kind is DefinitionKind.DOMAIN
            if (
                old is None
                or moved
                or old.sha256 != definition.sha256
                or old.active != running
                or old.name != definition.name
            ):
                place = DefinitionPlace(
                    definition.kind,
                    definition.uuid,
                    host.pool,
                    host.name,
                    definition.name,
                    definition.sha256,
                    running,
                    now,
                )
                places.append(place)
                self._remember((place,))
        return DefinitionChanges(tuple(versions), tuple(places))

    def forget(self, changes: DefinitionChanges) -> None:
        """Changes that could not be written: offered again when next read."""
        for version in changes.versions:
            self._latest.pop(scope_of(version.kind, version.uuid, version.pool, version.host), None)
        for place in changes.places:
            self._places.pop((place.kind, place.uuid, place.pool, place.host), None)

    def _remember(self, places: Iterable[DefinitionPlace]) -> None:
        for place in places:
            key = (place.kind, place.uuid, place.pool, place.host)
            if place.kind is DefinitionKind.DOMAIN:
                # Its places on other hosts stay (a restore of those says it moved): the
                # newest one is where it is.
                newest = self._places.get(self._vm_place.get(place.uuid, key))
                if newest is None or newest.since <= place.since:
                    self._vm_place[place.uuid] = key
            self._places[key] = place


def _version(definition: Definition, host: HostKey, now: float) -> DefinitionVersion:
    return DefinitionVersion(
        definition.kind,
        definition.uuid,
        host.pool,
        host.name,
        definition.name,
        definition.sha256,
        now,
        definition.text,
    )
