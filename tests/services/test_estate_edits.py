"""Estate edits through the core (services/estate_edits.py, session.apply_estate), over real
libvirt test-driver hosts: each edit journaled, the running session following at once
(backends, pollers, repository), and edits by another process picked up from the file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ovmtui.config import load_estate
from ovmtui.errors import ActionRefused, ConfigError
from ovmtui.model import HostKey, HostRole
from ovmtui.services.session import EstateSession, Notice, SessionEvents
from ovmtui.store.estate_file import (
    AddHost,
    AddPool,
    EditHost,
    EstateFile,
    EstateFileChanged,
    HostSpec,
    Promote,
    RemoveHost,
    SetRoles,
)
from ovmtui.store.repository import Repository

NODE = (Path(__file__).parent.parent / "data" / "libvirt-node-small.xml").resolve()
URI = f"test://{NODE}"

ESTATE = f"""\
# two hosts to begin with
[[pools]]
name = "a"

  [[pools.hosts]]
  name = "h1"
  libvirt = "{URI}"
  roles = ["master", "utility", "vm"]

  [[pools.hosts]]
  name = "h2"
  libvirt = "{URI}"
  roles = ["vm"]
"""


@pytest.fixture
def estate_path(tmp_path: Path) -> Path:
    path = tmp_path / "estate.toml"
    _write(path, ESTATE)
    return path


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


class Heard:
    def __init__(self) -> None:
        self.notices: list[Notice] = []


@pytest.fixture
async def session(estate_path: Path, tmp_path: Path) -> AsyncIterator[EstateSession]:
    heard = Heard()
    file = EstateFile.read(estate_path)
    async with EstateSession(
        file.estate,
        repository=tmp_path / "r.sqlite",
        estate_file=file,
        events=SessionEvents(notice=heard.notices.append),
        interval_s=60,
    ) as session:
        session.heard = heard  # type: ignore[attr-defined]
        await session.poll_once()
        yield session


async def _entries(session: EstateSession) -> list[tuple[str, str | None, bool | None, str]]:
    entries = await session.journal_entries()
    return [(e.operation, e.host, e.ok, e.detail or "") for e in entries]


async def test_an_added_host_is_polled_and_recorded_at_once(
    session: EstateSession, estate_path: Path, tmp_path: Path
) -> None:
    outcome = await session.estate_edits.apply(
        AddHost("a", "h3", HostSpec(libvirt=URI, roles=("vm",)))
    )
    assert _read(outcome.backup) == ESTATE
    assert [h.name for h in load_estate(estate_path).hosts] == ["h1", "h2", "h3"]
    key = HostKey("a", "h3")
    assert session.poller.backend(key) is not None
    await session.poller.repoll([key])
    host = session.snapshot.host(key)
    assert host is not None and host.reachable is True and len(host.vms) == 5
    assert host.roles == (HostRole.VM,)
    assert ("estate-host-add", "h3", True, "estate file written") in await _entries(session)
    known = await session.open_repository().load_snapshot()
    assert known is not None and known.host(key) is not None


async def test_a_running_poller_takes_new_hosts_and_drops_removed_ones(
    session: EstateSession,
) -> None:
    running = asyncio.create_task(session.run())
    try:
        old = session.poller.backend(HostKey("a", "h2"))
        await session.estate_edits.apply(AddPool("b"))
        await session.estate_edits.apply(AddHost("b", "b1", HostSpec(libvirt=URI)))
        # Through its own loop (repoll wakes the loops of a running poller; without one for
        # the new host it would time out).
        await session.poller.repoll([HostKey("b", "b1")], timeout_s=20)
        assert session.snapshot.host(HostKey("b", "b1")).reachable is True  # type: ignore[union-attr]
        assert session.snapshot.pools == ("a", "b")
        await session.estate_edits.apply(RemoveHost("h2"), force="h2")
        assert session.snapshot.host(HostKey("a", "h2")) is None
        assert session.poller.backend(HostKey("a", "h2")) is None
        assert old is not None and old.address  # closed, not reused
        # The others carry on: a refresh still answers.
        await session.poller.repoll([HostKey("a", "h1")])
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_host_running_vms_is_removed_only_with_its_name_typed(
    session: EstateSession, estate_path: Path
) -> None:
    before = _read(estate_path)
    with pytest.raises(ActionRefused, match=r"h2 runs \d+ VM\(s\).*--force h2"):
        await session.estate_edits.apply(RemoveHost("h2"))
    with pytest.raises(ActionRefused, match="is not the host's name"):
        await session.estate_edits.apply(RemoveHost("h2", forced=True), force="h1")
    assert _read(estate_path) == before
    await session.estate_edits.apply(RemoveHost("h2", forced=True), force="h2")
    assert [h.name for h in load_estate(estate_path).hosts] == ["h1"]
    ops = [(op, host, ok) for op, host, ok, _ in await _entries(session)]
    assert ops == [
        ("estate-host-remove", "h2", False),
        ("estate-host-remove", "h2", False),
        ("estate-host-remove", "h2", True),
    ]
    entries = await session.journal_entries()
    assert entries[-1].command == "ovmtui host remove h2 --force h2"


async def test_bad_input_is_journaled_and_writes_nothing(
    session: EstateSession, estate_path: Path
) -> None:
    with pytest.raises(ConfigError, match="more than one master"):
        await session.estate_edits.apply(SetRoles("h2", ("master",)))
    assert _read(estate_path) == ESTATE
    (entry,) = await _entries(session)
    assert entry[:3] == ("estate-host-roles", "h2", False) and "master" in entry[3]


async def test_promote_moves_the_master_role_with_its_reason(
    session: EstateSession, estate_path: Path, tmp_path: Path
) -> None:
    await session.estate_edits.apply(Promote("h2", "h1 lost its RAID"))
    estate = load_estate(estate_path)
    assert [h.roles for h in estate.hosts] == [
        (HostRole.UTILITY, HostRole.VM),
        (HostRole.MASTER, HostRole.VM),
    ]
    assert session.snapshot.host(HostKey("a", "h2")).roles[0] is HostRole.MASTER  # type: ignore[union-attr]
    (entry,) = await _entries(session)
    assert entry[:3] == ("estate-host-promote", "h2", True)
    assert "from h1 to h2" in entry[3] and "h1 lost its RAID" in entry[3]
    # The repository follows: its hosts' roles are the file's.
    await session.close()
    async with await Repository.open(tmp_path / "r.sqlite", read_only=True) as repo:
        known = await repo.load_snapshot()
    assert known is not None
    assert known.host(HostKey("a", "h2")).roles[0] is HostRole.MASTER  # type: ignore[union-attr]


async def test_an_unreachable_host_is_not_promoted(estate_path: Path, tmp_path: Path) -> None:
    text = ESTATE + '\n  [[pools.hosts]]\n  name = "h9"\n  libvirt = "test:///nonexistent.xml"\n'
    _write(estate_path, text)
    file = EstateFile.read(estate_path)
    async with EstateSession(
        file.estate, repository=tmp_path / "r.sqlite", estate_file=file
    ) as session:
        await session.poll_once()
        with pytest.raises(ActionRefused, match="h9 does not answer now"):
            await session.estate_edits.apply(Promote("h9", "try"))
    assert _read(estate_path) == text


async def test_a_roles_change_keeps_the_connection_and_a_new_uri_reconnects(
    session: EstateSession,
) -> None:
    key = HostKey("a", "h2")
    before = session.poller.backend(key)
    await session.estate_edits.apply(SetRoles("h2", ("vm", "utility")))
    assert session.poller.backend(key) is before
    assert session.snapshot.host(key).roles == (HostRole.VM, HostRole.UTILITY)  # type: ignore[union-attr]
    await session.estate_edits.apply(EditHost("h2", HostSpec(libvirt="test:///default")))
    after = session.poller.backend(key)
    assert after is not before and after is not None and after.address == "test:///default"


async def test_an_edit_by_another_process_is_picked_up_from_the_file(
    session: EstateSession, estate_path: Path
) -> None:
    assert await session.estate_edits.check_file() is False  # nothing changed: a stat
    _write(estate_path, ESTATE.replace('"h2"', '"h2b"'))
    assert await session.estate_edits.check_file() is True
    assert [h.name for h in session.estate.hosts] == ["h1", "h2b"]
    assert session.snapshot.host(HostKey("a", "h2")) is None
    notices = session.heard.notices  # type: ignore[attr-defined]
    assert "reloaded" in notices[-1].text
    # An edit made now is made on the new text.
    await session.estate_edits.apply(SetRoles("h2b", ("utility",)))
    assert 'name = "h2b"' in _read(estate_path)


async def test_an_invalid_file_on_disk_is_said_once_and_the_estate_kept(
    session: EstateSession, estate_path: Path
) -> None:
    _write(estate_path, ESTATE + "\n[[pools]]\nname = 'a'\n")
    assert await session.estate_edits.check_file() is False
    assert await session.estate_edits.check_file() is False
    notices = [n for n in session.heard.notices if n.severity == "error"]  # type: ignore[attr-defined]
    assert len(notices) == 1 and "duplicate pool name" in notices[0].text
    assert [h.name for h in session.estate.hosts] == ["h1", "h2"]
    # Nor is it overwritten by an edit made on the version read before.
    with pytest.raises(EstateFileChanged):
        await session.estate_edits.apply(SetRoles("h2", ("utility",)))


async def test_an_estate_without_a_file_refuses_edits(tmp_path: Path) -> None:
    from ovmtui.demo import demo_estate

    async with EstateSession(demo_estate()) as session:
        assert session.estate_edits.refusal() is not None
        with pytest.raises(ActionRefused, match="no file to edit"):
            await session.estate_edits.apply(AddPool("x"))


async def test_read_only_refuses_edits(estate_path: Path) -> None:
    file = EstateFile.read(estate_path)
    async with EstateSession(file.estate, estate_file=file, read_only=True) as session:
        assert session.estate_edits.refusal() is not None
        with pytest.raises(ActionRefused, match="read-only"):
            await session.estate_edits.apply(AddPool("x"))
    assert _read(estate_path) == ESTATE
