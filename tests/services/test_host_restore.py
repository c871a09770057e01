"""Kept definitions and host restore, against libvirt test-driver hosts and real repositories.

A "reinstall" is a second session on the same repository whose host of the same name is an
empty node file: the repository remembers what the first session saw there, the host holds
nothing. ``test:///FILE`` connections are private copies (see test_definitions.py), so each
session's hosts are its own; ``test:///default`` is the one node this process shares, used
where a change must come from behind the backend's back (a redefinition).
"""

from __future__ import annotations

import asyncio
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import DefinitionKind, HostKey, HostRole, VmState
from ovmtui.services.host_restore import RESTORE_OPERATION, Verdict
from ovmtui.services.session import EstateSession
from tests.services.test_definitions import (  # noqa: F401  (shared_node: a fixture)
    DEAD_URI,
    SharedNode,
    domain_xml,
    estate_of,
    new_uuid,
    node_uri,
    run_cli,
    shared_node,
)

H1, H2 = HostKey("p", "h1"), HostKey("p", "h2")


def rows(repository: Path, table: str) -> int:
    with sqlite3.connect(repository) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class Estate:
    """vm1 runs on h1; vm2 (shut off) and vm3 (running) are on h2."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.repository = tmp_path / "repo.sqlite"
        self.u1, self.u2, self.u3 = new_uuid(), new_uuid(), new_uuid()
        self.h1 = node_uri(tmp_path, "h1.xml", [("vm1", self.u1, True)])
        self.h2 = node_uri(tmp_path, "h2.xml", [("vm2", self.u2, False), ("vm3", self.u3, True)])
        self.empty = node_uri(tmp_path, "empty.xml", [])

    def session(self, h1: str | None = None, h2: str | None = None, **kw: object) -> EstateSession:
        estate = estate_of(("p", "h1", h1 or self.h1), ("p", "h2", h2 or self.h2))
        return EstateSession(estate, repository=self.repository, **kw)  # type: ignore[arg-type]

    async def record(self) -> None:
        async with self.session() as session:
            await session.poll_once()


@pytest.fixture
async def estate(tmp_path: Path) -> Estate:
    e = Estate(tmp_path)
    await e.record()
    return e


# --------------------------------------------------------------------------- kept


async def test_first_poll_keeps_each_definition_and_an_idle_poll_writes_nothing(
    tmp_path: Path,
) -> None:
    e = Estate(tmp_path)
    async with e.session() as session:
        await session.poll_once()
        backends = [session.poller.backend(key) for key in (H1, H2)]
        fetched = [b.definition_fetches for b in backends]  # type: ignore[union-attr]
        await session.poll_once()
        await session.poll_once()
        # The later polls read no XML at all: nothing to hash, nothing to compare.
        assert [b.definition_fetches for b in backends] == fetched  # type: ignore[union-attr]
    # One write per host whose poll read definitions (counted once the writer drained).
    assert session.definition_writes == 2
    assert rows(e.repository, "definition_versions") == 3
    async with e.session() as session:  # a new run: everything read again, nothing new
        await session.poll_once()
        await session.poll_once()
    assert session.definition_writes == 0
    assert rows(e.repository, "definition_versions") == 3
    with sqlite3.connect(e.repository) as db:
        places = dict(db.execute("SELECT name, active FROM definition_places").fetchall())
    assert places == {"vm1": 1, "vm2": 0, "vm3": 1}


async def test_a_running_vm_is_kept_by_its_persistent_definition(estate: Estate) -> None:
    with sqlite3.connect(estate.repository) as db:
        (text,) = db.execute("SELECT text FROM definition_versions WHERE name = 'vm3'").fetchone()
    root = ET.fromstring(text)
    # The live XML of a running domain carries its ID: not what `virsh define` is given.
    assert root.tag == "domain" and "id" not in root.attrib
    assert root.findtext("uuid") == estate.u3


async def test_a_redefinition_is_a_new_version_with_its_diff(
    tmp_path: Path,
    shared_node: SharedNode,  # noqa: F811  (the fixture, imported)
) -> None:
    name = f"kept-{new_uuid()[:8]}"
    uuid = shared_node.define(name, vcpus=1)
    repository = tmp_path / "repo.sqlite"
    estate = estate_of(("p", "a", "test:///default"))
    async with EstateSession(estate, repository=repository) as session:
        await session.poll_once()
        shared_node.conn.defineXML(domain_xml(name, uuid, node=False, vcpus=3))
        # The "defined" event reaches the backend on libvirt's thread: poll until it has.
        for _ in range(200):
            await session.poll_once()
            versions = await session.open_repository().definition_versions(
                DefinitionKind.DOMAIN, uuid
            )
            if len(versions) == 2:
                break
            await asyncio.sleep(0.02)
    assert [v.name for v in versions] == [name, name]
    assert "<vcpu placement='static'>3</vcpu>" in versions[1].text
    done = run_cli("--repository", str(repository), "history", name, "--diff")
    assert done.returncode == 0, done.stderr
    assert "2 version(s)" in done.stdout
    assert "-  <vcpu placement='static'>1</vcpu>" in done.stdout
    assert "+  <vcpu placement='static'>3</vcpu>" in done.stdout


async def test_networks_and_storage_pools_are_kept_with_their_host(tmp_path: Path) -> None:
    repository = tmp_path / "repo.sqlite"
    async with EstateSession(
        estate_of(("p", "a", "test:///default")), repository=repository
    ) as session:
        await session.poll_once()
        places = await session.open_repository().definitions_on("p", "a")
    kept = {(p.kind, p.name, p.active) for p in places}
    assert (DefinitionKind.NETWORK, "default", True) in kept
    assert (DefinitionKind.STORAGE_POOL, "default-pool", True) in kept


# --------------------------------------------------------------------------- plan


async def test_reinstalled_host_plan_defines_refuses_and_skips_with_why(estate: Estate) -> None:
    # h2 reinstalled (empty), and h1 now defines vm3 (shut off).
    h1 = node_uri(estate.tmp, "h1b.xml", [("vm1", estate.u1, True), ("vm3", estate.u3, False)])
    async with estate.session(h1=h1, h2=estate.empty) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2, start=True)
    steps = {step.name: step for step in plan.steps}
    assert plan.refusal is None
    assert steps["vm2"].verdict is Verdict.DEFINE and not steps["vm2"].start
    assert steps["vm3"].verdict is Verdict.REFUSE
    assert "p/h1 defines it now" in steps["vm3"].why
    assert "vm1" not in steps  # never seen on h2


async def test_a_vm_that_ran_is_started_only_when_asked(estate: Estate) -> None:
    async with estate.session(h2=estate.empty) as session:
        await session.poll_once()
        asked = await session.host_restores.plan(H2, start=True)
        not_asked = await session.host_restores.plan(H2, start=False)
    vm3 = {s.name: s for s in asked.steps}["vm3"]
    assert vm3.verdict is Verdict.DEFINE and vm3.start and vm3.command.endswith(" start vm3")
    quiet = {s.name: s for s in not_asked.steps}["vm3"]
    assert not quiet.start and "--start" in quiet.why
    assert quiet.command.endswith(" define vm3.xml")


async def test_a_host_that_has_it_all_skips_everything(estate: Estate) -> None:
    async with estate.session() as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
    assert {s.verdict for s in plan.steps} == {Verdict.SKIP}
    assert all(s.why == "already defined, identical" for s in plan.steps)
    assert plan.to_define == ()


async def test_an_unreachable_host_is_not_restored(estate: Estate) -> None:
    async with estate.session(h2=DEAD_URI) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
    assert plan.refusal is not None and "unreachable" in plan.refusal


async def test_a_vm_last_known_on_an_unreachable_host_is_refused(estate: Estate) -> None:
    # vm3 moves to h1 (seen there), then h1 stops answering and h2 is reinstalled.
    h1 = node_uri(estate.tmp, "h1b.xml", [("vm1", estate.u1, True), ("vm3", estate.u3, True)])
    h2 = node_uri(estate.tmp, "h2b.xml", [("vm2", estate.u2, False)])
    async with estate.session(h1=h1, h2=h2) as session:
        await session.poll_once()
    async with estate.session(h1=DEAD_URI, h2=estate.empty) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
    vm3 = {s.name: s for s in plan.steps}["vm3"]
    assert vm3.verdict is Verdict.REFUSE and "which is unreachable" in vm3.why


async def test_a_vm_that_moved_away_and_went_is_skipped(estate: Estate) -> None:
    h1 = node_uri(estate.tmp, "h1b.xml", [("vm1", estate.u1, True), ("vm3", estate.u3, True)])
    h2 = node_uri(estate.tmp, "h2b.xml", [("vm2", estate.u2, False)])
    async with estate.session(h1=h1, h2=h2) as session:
        await session.poll_once()  # vm3 seen on h1 later than on h2
    async with estate.session(h2=estate.empty) as session:  # h1 without vm3 (undefined)
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
    vm3 = {s.name: s for s in plan.steps}["vm3"]
    assert vm3.verdict is Verdict.SKIP and "moved to p/h1" in vm3.why


# --------------------------------------------------------------------------- run


async def test_restore_defines_starts_journals_and_the_poll_confirms(estate: Estate) -> None:
    async with estate.session(h2=estate.empty) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2, start=True)
        told: list[str] = []
        outcome = await session.host_restores.run(plan, progress=lambda o: told.append(o.step.name))
        states = {vm.name: vm.state for vm in session.snapshot.host(H2).vms}  # type: ignore[union-attr]
        journal = await session.open_repository().journal_entries(host="h2")
        jobs = await session.open_repository().jobs()
    assert told == ["vm2", "vm3"]
    assert outcome.ok and [o.confirmed for o in outcome.outcomes] == [True, True]
    assert states == {"vm2": VmState.SHUTOFF, "vm3": VmState.RUNNING}
    restores = [j for j in journal if j.operation == RESTORE_OPERATION]
    assert [(j.vm, j.ok) for j in restores] == [("vm2", True), ("vm3", True)]
    assert "define vm3.xml" in (restores[1].command or "")
    assert any(j.kind == "host-restore" and j.state == "done" for j in jobs)


async def test_read_only_refuses_each_define_on_the_record(estate: Estate) -> None:
    async with estate.session(h2=estate.empty, read_only=True) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
        outcome = await session.host_restores.run(plan)
        vms = session.snapshot.host(H2).vms  # type: ignore[union-attr]
    assert vms == ()
    assert outcome.outcomes and not any(o.ok for o in outcome.outcomes)
    assert all("read-only" in o.detail for o in outcome.outcomes)


async def test_pool_order_puts_masters_first(tmp_path: Path) -> None:
    a = node_uri(tmp_path, "a.xml", [])
    b = node_uri(tmp_path, "b.xml", [])
    estate = EstateConfig(
        (
            PoolConfig(
                "p",
                (
                    HostConfig("p", "a", libvirt=a),
                    HostConfig("p", "b", libvirt=b, roles=(HostRole.MASTER,)),
                ),
            ),
        ),
        "test",
    )
    async with EstateSession(estate, repository=tmp_path / "r.sqlite") as session:
        assert session.host_restores.pool_order("p") == (HostKey("p", "b"), HostKey("p", "a"))


# --------------------------------------------------------------------------- CLI


def estate_file(path: Path, repository: Path, h1: str, h2: str) -> Path:
    path.write_text(
        f'repository = "{repository}"\n[[pools]]\nname = "p"\n'
        f'[[pools.hosts]]\nname = "h1"\nlibvirt = "{h1}"\nroles = ["master", "vm"]\n'
        f'[[pools.hosts]]\nname = "h2"\nlibvirt = "{h2}"\n',
        encoding="utf-8",
    )
    return path


async def test_cli_dry_run_lists_and_refuses_then_yes_restores(estate: Estate) -> None:
    h1 = node_uri(estate.tmp, "h1b.xml", [("vm1", estate.u1, True), ("vm3", estate.u3, False)])
    config = estate_file(estate.tmp / "estate.toml", estate.repository, h1, estate.empty)
    dry = run_cli("--config", str(config), "host", "restore", "h2", "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "define  VM    vm2" in dry.stdout and "refuse  VM    vm3" in dry.stdout
    assert "p/h1 defines it now" in dry.stdout
    no_tty = run_cli("--config", str(config), "host", "restore", "h2")
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    done = run_cli("--config", str(config), "host", "restore", "h2", "--yes", "--start")
    assert "p/h2 VM vm2: confirmed by the next poll" in done.stdout
    assert done.returncode == 1  # vm3 was refused
    audit = run_cli("--config", str(config), "audit", "--host", "h2")
    assert "define vm2.xml" in audit.stdout and "vm3" not in audit.stdout


async def test_cli_history_names_and_json(estate: Estate) -> None:
    config = estate_file(estate.tmp / "estate.toml", estate.repository, estate.h1, estate.h2)
    listed = run_cli("--config", str(config), "history", "vm2", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"uuid": "' + estate.u2 + '"' in listed.stdout
    missing = run_cli("--config", str(config), "history", "nope")
    assert missing.returncode == 2 and "no definition of 'nope'" in missing.stderr


async def test_a_restored_repository_gets_every_definition_again(tmp_path: Path) -> None:
    """A repository restored from a backup taken before the definitions were kept: the next
    poll reads them all again (the backends' caches would otherwise hide them from it)."""
    e = Estate(tmp_path)
    async with e.session() as session:
        backup = await session.back_up_now()  # nothing polled yet: no definition in it
        await session.poll_once()
        plan = await session.plan_restore(backup)
        await session.restore(plan)
        assert rows(e.repository, "definition_versions") == 0
        await session.poll_once()
    assert rows(e.repository, "definition_versions") == 3


INFRA = (
    "<network><name>lan</name><uuid>55555555-5555-4555-8555-555555555555</uuid>"
    "<bridge name='br-lan'/></network>"
    "<pool type='dir'><name>images</name><uuid>66666666-6666-4666-8666-666666666666</uuid>"
    "<target><path>/var/lib/images</path></target></pool>"
)


def add_infrastructure(uri: str) -> None:
    """A network and a storage pool (both active) into a test-driver node file."""
    node = Path(uri.removeprefix("test://"))
    node.write_text(node.read_text().replace("</node>", INFRA + "</node>"))


async def test_networks_and_pools_come_back_first_and_active(tmp_path: Path) -> None:
    e = Estate(tmp_path)
    add_infrastructure(e.h2)
    await e.record()
    async with e.session(h2=e.empty) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(H2)
        outcome = await session.host_restores.run(plan)
        backend = session.poller.backend(H2)
        now = {(d.kind, d.name): d.active for d in await backend.current_definitions()}  # type: ignore[union-attr]
    assert [(s.kind, s.name) for s in plan.steps][:2] == [
        (DefinitionKind.NETWORK, "lan"),
        (DefinitionKind.STORAGE_POOL, "images"),
    ]
    assert plan.steps[0].start and "net-start lan" in plan.steps[0].command
    assert [o.confirmed for o in outcome.outcomes] == [True, True, True, True]
    assert now[(DefinitionKind.NETWORK, "lan")] and now[(DefinitionKind.STORAGE_POOL, "images")]
    # The VM that ran was only defined: nobody asked to start it.
    assert now[(DefinitionKind.DOMAIN, "vm3")] is False
