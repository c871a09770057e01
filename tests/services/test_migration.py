"""The migration service's own rules: the plan from every target at once, the override and
its record, in-flight memory, cancel, the move confirmed by the polls, no action meanwhile.

The backends here are in memory (a move that takes exactly as long as a test says, a host
that answers a question wrongly); the real moves are tested on the lab (libvirt) and over a
real sshd (Xen)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable

import pytest

from ovmtui.backend.base import Backend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import (
    Capability,
    HostFacts,
    HostKey,
    HostPoll,
    MigrationNeeds,
    MigrationProgress,
    TargetAnswers,
    Vm,
    VmAction,
    VmState,
)
from ovmtui.services.session import EstateSession
from tests.services.fakes import CAPABILITIES, FakeBackend

POOL = "p"


class MigratingBackend(FakeBackend):
    """A fake host that can move its VMs to another of its kind."""

    def __init__(self, name: str, vms: list[Vm] | None = None, *, free_mib: int = 8192) -> None:
        super().__init__(POOL, name, vms)
        self.capabilities = CAPABILITIES | {Capability.MIGRATE}
        self.free_mib = free_mib
        self.paths: set[str] = {"/OVS/running_pool/web01/System.img"}
        self.release = asyncio.Event()
        self.release.set()
        self.aborted: list[str] = []
        self.fail_move: str | None = None

    async def poll(self) -> HostPoll:
        poll = await super().poll()
        facts = HostFacts(hostname=self.host.name, hypervisor="Fake", free_memory_mib=self.free_mib)
        return HostPoll(facts, poll.vms, poll.taken_at)

    def migration_command(self, vm: Vm, target: Backend, *, live: bool) -> str:
        return shlex.join(["fake", "migrate", vm.name, target.host.name])

    async def migration_needs(self, vm: Vm) -> MigrationNeeds:
        return MigrationNeeds(
            memory_mib=vm.memory_mib,
            disk_paths=(f"/OVS/running_pool/{vm.name}/System.img",),
            networks=("br0",),
        )

    async def can_host(self, needs: MigrationNeeds) -> TargetAnswers:
        return TargetAnswers(
            cpu_compatible=True,
            cpu_detail="same fake CPU",
            paths_visible={p: p in self.paths for p in needs.disk_paths},
            networks_present={"br0": True},
        )

    async def migrate(
        self,
        vm: Vm,
        target: Backend,
        *,
        live: bool,
        progress: Callable[[MigrationProgress], None] | None = None,
    ) -> None:
        assert isinstance(target, MigratingBackend)
        if progress is not None:
            progress(MigrationProgress(0.1, processed_bytes=1, remaining_bytes=3, total_bytes=4))
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.aborted.append(vm.name)  # abortJob: the VM stays here
            raise
        if self.fail_move:
            raise ActionFailed(self.fail_move)
        target.vms[vm.uuid] = self.vms.pop(vm.uuid)


WEB = Vm(uuid="u-web", name="web01", state=VmState.RUNNING, memory_mib=2048)


async def session_of(*backends: MigratingBackend) -> EstateSession:
    hosts = tuple(HostConfig(POOL, b.host.name, libvirt="test:///default") for b in backends)
    estate = EstateConfig((PoolConfig(POOL, hosts, "/OVS"),), "test")
    session = EstateSession(estate, backends=list(backends), interval_s=0.2)
    await session.start()
    await session.poll_once()
    return session


async def test_the_plan_judges_every_target_and_the_move_is_on_the_record() -> None:
    h1, h2 = MigratingBackend("h1", [WEB]), MigratingBackend("h2", free_mib=4096)
    h3 = MigratingBackend("h3", free_mib=1024)  # too small
    h2.paths = h1.paths
    h3.paths = h1.paths
    session = await session_of(h1, h2, h3)
    runner = asyncio.create_task(session.run())
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        plan = await session.migrations.plan(placed)
        assert [(v.host.name, v.go) for v in plan.verdicts] == [("h2", True), ("h3", False)]
        assert plan.best is not None and plan.best.host.name == "h2"
        (short,) = plan.verdicts[1].failed
        assert short.name == "memory" and "short" in short.detail
        readings: list[MigrationProgress] = []
        outcome = await session.migrations.migrate(
            placed, HostKey(POOL, "h2"), plan=plan, progress=readings.append
        )
        assert outcome.ok, outcome.detail
        assert readings and readings[0].fraction == 0.25
        moved = session.snapshot.find_vm("u-web")
        assert moved is not None and moved.host == "h2"
        journal = session.actions.journal
        records = journal.records  # type: ignore[union-attr]
        started, finished = records[0], records[-1]
        assert started[6] == "migrate"
        assert "fake migrate web01 h2" in started[7] and "checks passed" in started[7]
        assert finished[2] is True and "on h2 after" in str(finished[3])
    finally:
        runner.cancel()
        await session.close()


async def test_a_no_go_target_needs_a_reason_and_the_override_is_recorded() -> None:
    h1, h2 = MigratingBackend("h1", [WEB]), MigratingBackend("h2")
    h2.paths = set()  # the disk is not visible there
    session = await session_of(h1, h2)
    runner = asyncio.create_task(session.run())
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        with pytest.raises(ActionRefused, match="not visible from the target"):
            await session.migrations.migrate(placed, HostKey(POOL, "h2"))
        assert session.actions.journal.records == []  # type: ignore[union-attr]
        assert h1.vms  # nothing moved
        outcome = await session.migrations.migrate(
            placed, HostKey(POOL, "h2"), override="disk copied by hand at 02:10, ticket 4711"
        )
        assert outcome.ok
        started = session.actions.journal.records[0]  # type: ignore[union-attr]
        assert "OVERRIDE (disk copied by hand at 02:10, ticket 4711)" in started[7]
        assert "storage: not visible from the target" in started[7]
    finally:
        runner.cancel()
        await session.close()


async def test_cancel_aborts_the_move_and_no_action_runs_meanwhile() -> None:
    h1, h2 = MigratingBackend("h1", [WEB]), MigratingBackend("h2")
    h2.paths = h1.paths
    h1.release.clear()
    session = await session_of(h1, h2)
    runner = asyncio.create_task(session.run())
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        move = asyncio.create_task(session.migrations.migrate(placed, HostKey(POOL, "h2")))
        async with asyncio.timeout(10):
            while "u-web" not in session.migrations.moving:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert session.refusal(placed, VmAction.SHUTDOWN) == "migrating to h2"
        # A second move of it, or another into h2 counting its memory: refused / counted.
        with pytest.raises(ActionRefused, match="migrating to h2"):
            await session.migrations.migrate(placed, HostKey(POOL, "h2"))
        assert session.migrations.cancel("u-web")
        outcome = await move
        assert outcome.cancelled and not outcome.ok
        assert "stays on h1" in outcome.detail
        assert h1.aborted == ["web01"] and "u-web" in h1.vms
        finished = session.actions.journal.records[-1]  # type: ignore[union-attr]
        assert finished[2] is False and "cancelled by the operator" in str(finished[3])
        assert session.refusal(placed, VmAction.SHUTDOWN) is None
    finally:
        runner.cancel()
        await session.close()


async def test_read_only_refuses_a_move_before_it_starts() -> None:
    h1, h2 = MigratingBackend("h1", [WEB]), MigratingBackend("h2")
    h2.paths = h1.paths
    session = await session_of(h1, h2)
    session.actions.read_only = True
    try:
        placed = session.snapshot.find_vm("u-web")
        assert placed is not None
        with pytest.raises(ActionRefused, match=r"[Rr]ead-only"):
            await session.migrations.migrate(placed, HostKey(POOL, "h2"))
        assert "u-web" in h1.vms
    finally:
        await session.close()


def test_a_progress_reading_says_only_what_the_host_measured() -> None:
    from ovmtui.services.migration import describe_progress

    full = MigrationProgress(
        12.4,
        processed_bytes=512 << 20,
        remaining_bytes=512 << 20,
        total_bytes=1 << 30,
        bytes_per_s=64 << 20,
        dirty_pages_per_s=1500,
    )
    assert describe_progress(full) == (
        "migrating: 12 s, 50%, 512.0 MiB of 1.0 GiB, 64.0 MiB/s, 1500 dirty pages/s, ETA 8 s"
    )
    assert describe_progress(MigrationProgress(3.0)) == "migrating: 3 s"


def test_a_tool_line_is_shown_as_it_is() -> None:
    from ovmtui.services.migration import describe_progress

    line = MigrationProgress(4.2, note="migration target: Ready to receive domain.")
    assert describe_progress(line) == "migrating: 4 s, migration target: Ready to receive domain."
