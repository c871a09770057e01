"""Roles that mean something (ovmtui/roles.py): placement only on VM hosts where a pool uses
roles, every host everything where it does not, and a pool's master watched."""

from __future__ import annotations

import pytest

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostRole, HostStatus
from ovmtui.roles import limits, master_problems, master_state, role_problem, runs_vms
from ovmtui.services.session import EstateSession
from tests.services.test_migration import POOL, WEB, MigratingBackend

M, U, V = HostRole.MASTER, HostRole.UTILITY, HostRole.VM


def _host(name: str, *roles: HostRole, reachable: bool | None = True, **kw: object) -> HostStatus:
    return HostStatus(POOL, name, "x", roles=roles, reachable=reachable, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pool", "runs", "cannot"),
    [
        # No roles anywhere in the pool: every host does everything, nothing is missing.
        ((_host("a"), _host("b")), [True, True], ()),
        ((_host("a", M, U, V), _host("b", V)), [True, True], ()),
        # Roles in use: a host without any role is no VM host.
        ((_host("a", M, U, V), _host("b")), [True, False], ()),
        ((_host("a", M, U), _host("b", U)), [False, False], ("no VM host",)),
        ((_host("a", M, V), _host("b", V)), [True, True], ("no utility host",)),
        ((_host("a", M),), [False], ("no VM host", "no utility host")),
    ],
)
def test_who_runs_vms_and_what_a_pool_cannot_do(
    pool: tuple[HostStatus, ...], runs: list[bool], cannot: tuple[str, ...]
) -> None:
    assert [runs_vms(h, pool) for h in pool] == runs
    said = limits(pool)
    assert len(said) == len(cannot)
    for text, start in zip(said, cannot, strict=True):
        assert text.startswith(start)
    assert limits(pool, short=True) == cannot
    for host, ok in zip(pool, runs, strict=True):
        assert (role_problem(host, pool) is None) is ok


def test_a_pool_without_a_master_or_with_one_down_says_so() -> None:
    fine = (_host("h1", M, V), _host("h2", V))
    assert master_state(POOL, fine) is not None and master_state(POOL, fine).text(0) is None  # type: ignore[union-attr]
    assert master_state(POOL, (_host("h1"), _host("h2"))) is None  # roles not used
    assert master_problems([POOL], (_host("h1", V), _host("h2", V)), 0) == ((POOL, "no master"),)
    down = (_host("h1", M, V, reachable=False, failed_at=1000.0), _host("h2", V))
    assert master_problems([POOL], down, 1000.0 + 4 * 60 + 5) == (
        (POOL, "master h1 unreachable for 4 min"),
    )
    assert master_problems([POOL], down, 1030.0) == ((POOL, "master h1 unreachable for 30 s"),)


async def _session(roles: dict[str, tuple[HostRole, ...]]) -> EstateSession:
    backends = [MigratingBackend("h1", [WEB]), MigratingBackend("h2"), MigratingBackend("h3")]
    for b in backends[1:]:
        b.paths = backends[0].paths
    hosts = tuple(
        HostConfig(POOL, b.host.name, libvirt="test:///default", roles=roles.get(b.host.name, ()))
        for b in backends
    )
    session = EstateSession(
        EstateConfig((PoolConfig(POOL, hosts, "/OVS"),), "test"), backends=backends
    )
    await session.start()
    await session.poll_once()
    return session


async def test_migration_targets_are_the_vm_hosts_only_where_roles_are_used() -> None:
    session = await _session({"h1": (M, V), "h2": (U,), "h3": (V,)})
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        plan = await session.migrations.plan(placed)
        assert [(v.host.name, v.go) for v in plan.verdicts] == [("h3", True), ("h2", False)]
        (role,) = [c for c in plan.verdicts[1].checks if c.name == "role"]
        assert role.ok is False and "not a VM host (roles: utility)" in role.detail
        evacuation = await session.migrations.plan_evacuation(placed.host_key)
        assert [p.verdict.host.name for p in evacuation.placements if p.verdict] == ["h3"]
    finally:
        await session.close()


async def test_without_roles_every_host_takes_vms() -> None:
    session = await _session({})
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        plan = await session.migrations.plan(placed)
        assert sorted((v.host.name, v.go) for v in plan.verdicts) == [("h2", True), ("h3", True)]
        assert not any(c.name == "role" for v in plan.verdicts for c in v.checks)
    finally:
        await session.close()


async def test_a_pool_with_no_other_vm_host_places_nothing_and_says_why() -> None:
    session = await _session({"h1": (M, V), "h2": (U,), "h3": (U,)})
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        evacuation = await session.migrations.plan_evacuation(placed.host_key)
        (stranded,) = evacuation.stranded
        assert "h2: role (not a VM host" in stranded.why_not
    finally:
        await session.close()
