"""What a host's pool roles mean (master, utility, vm), as pure rules.

Roles are opt-in, pool by pool: a pool where no host has any role (the bundled demo's
roles aside, most libvirt estates, the lab) does not use them, and every host of it does
everything (runs VMs, does file work, answers for the pool). As soon as one host of a pool
has a role, the pool's roles mean what they say:

- exactly one master: a pool without one, or whose master does not answer, is flagged in the
  tree and the header, and ovmtui keeps driving every other host directly;
- only hosts with the ``vm`` role are placement targets (migrations, evacuations);
- only hosts with the ``utility`` role do the file work on the shared storage.

A pool with no VM host, or no utility host, says what it cannot do (``limits``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ovmtui.model import HostRole, HostStatus


class RoledHost(Protocol):
    """A host as the estate file or a snapshot describes it."""

    @property
    def pool(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def roles(self) -> tuple[HostRole, ...]: ...


H = TypeVar("H", bound=RoledHost)


def pool_hosts(hosts: Iterable[H], pool: str) -> list[H]:
    return [host for host in hosts if host.pool == pool]


def uses_roles(pool: Sequence[RoledHost]) -> bool:
    """Whether any host of this pool has a role (else every host does everything)."""
    return any(host.roles for host in pool)


def has_role(host: RoledHost, role: HostRole, pool: Sequence[RoledHost]) -> bool:
    """Whether ``host`` does what ``role`` stands for, in its ``pool`` (all its hosts)."""
    return role in host.roles or not uses_roles(pool)


def runs_vms(host: RoledHost, pool: Sequence[RoledHost]) -> bool:
    return has_role(host, HostRole.VM, pool)


def master_of(pool: Sequence[H]) -> H | None:
    return next((host for host in pool if HostRole.MASTER in host.roles), None)


def role_problem(target: RoledHost, pool: Sequence[RoledHost]) -> str | None:
    """Why ``target`` takes no VMs (it has roles, and not ``vm``), or None."""
    if runs_vms(target, pool):
        return None
    roles = ", ".join(role.value for role in target.roles)
    return f"not a VM host (roles: {roles}): only hosts with the vm role take VMs"


_LIMITS = (
    (HostRole.VM, "no VM host", "VMs cannot be placed, moved or evacuated within it"),
    (HostRole.UTILITY, "no utility host", "no file work on its shared storage"),
)


def limits(pool: Sequence[RoledHost], *, short: bool = False) -> tuple[str, ...]:
    """What this pool cannot do for want of a role, each said whole (``short``: its name
    only, "no VM host", as the tree shows it)."""
    if not pool or not uses_roles(pool):
        return ()
    return tuple(
        name if short else f"{name}: {what}"
        for role, name, what in _LIMITS
        if not any(role in host.roles for host in pool)
    )


@dataclass(frozen=True, slots=True)
class MasterState:
    """How a pool's master stands: ``text`` is what the tree and header show, None if well."""

    pool: str
    master: str | None
    down_since: float | None = None  # when the master stopped answering

    def text(self, now: float) -> str | None:
        if self.master is None:
            return "no master"
        if self.down_since is None:
            return None
        return f"master {self.master} unreachable for {_duration(now - self.down_since)}"


def master_state(pool: str, hosts: Sequence[HostStatus]) -> MasterState | None:
    """The master's state of a pool that uses roles (None: roles are not used there)."""
    members = pool_hosts(hosts, pool)
    if not uses_roles(members):
        return None
    master = master_of(members)
    if master is None:
        return MasterState(pool, None)
    if master.reachable is False:
        since = master.failed_at if master.failed_at is not None else master.taken_at
        return MasterState(pool, master.name, since)
    return MasterState(pool, master.name)


def master_problems(
    pools: Iterable[str], hosts: Sequence[HostStatus], now: float, *, with_limits: bool = False
) -> tuple[tuple[str, str], ...]:
    """(pool, text) of each pool whose master is missing or unreachable (``with_limits``:
    and of each pool that lacks a VM or a utility host, "no VM host")."""
    by_pool: dict[str, list[HostStatus]] = {}
    for host in hosts:  # one pass: the header asks every second
        by_pool.setdefault(host.pool, []).append(host)
    out: list[tuple[str, str]] = []
    for pool in pools:
        members = by_pool.get(pool, [])
        state = master_state(pool, members)
        text = None if state is None else state.text(now)
        if text is not None:
            out.append((pool, text))
        if with_limits:
            out.extend((pool, limit) for limit in limits(members, short=True))
    return tuple(out)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
