"""Definitions: exported from real libvirt test-driver hosts into one archive, defined again.

Every ``test:///FILE`` connection is a private copy of its node file, so a change made in one
process (or one connection) is seen by nobody else. In-process tests therefore keep the
poller's backends (the same connections) from the export to the import; where a change must
come from behind the backend's back, host "a" is ``test:///default``, the one node that
every connection of this process shares. The CLI tests check what one process says and
records (output, exit code, journal), not what another process would see on the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import re
import shlex
import sqlite3
import subprocess
import sys
import tarfile
import threading
import urllib.parse
import uuid as uuid_module
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from ovmtui.backend.factory import backend_for
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.demo import demo_estate
from ovmtui.errors import ActionRefused, ArchiveError, VmNotFound
from ovmtui.identity import current_user
from ovmtui.model import EstateSnapshot, HostKey, HostStatus, Vm, VmState
from ovmtui.services import definitions as definitions_module
from ovmtui.services.definitions import (
    ArchiveKey,
    DefinitionArchive,
    Provenance,
    export_definitions,
    import_definition,
    read_archive,
    safe_part,
)
from ovmtui.services.poller import EstatePoller, PolledHost

DEAD_URI = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1: refused at once
FIXED_NOW = 1_000_000_000.0
# This repository's key in the in-process tests; the CLI tests use real repositories' keys.
KEY = ArchiveKey("0123456789abcdef0123456789abcdef", bytes(range(32)))
NOT_VERIFIED = "archive not verified as this repository's: "
BECAUSE_TRUSTED = "; imported because --trust-archive was given"
CHANGED = "the signature does not match: the archive was changed after it was made"
SAFE_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")

# --------------------------------------------------------------------------- helpers


def new_uuid() -> str:
    return str(uuid_module.uuid4())


def domain_xml(
    name: str, uuid: str, *, running: bool = False, node: bool = True, vcpus: int = 1
) -> str:
    state = f"<test:runstate>{1 if running else 5}</test:runstate>" if node else ""
    namespace = " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'" if node else ""
    return f"""<domain type='test'{namespace}>
    <name>{escape(name)}</name>
    <uuid>{uuid}</uuid>
    <memory unit='MiB'>512</memory>
    <vcpu>{vcpus}</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/OVS/sharedDisk/{uuid}.img'/>
        <target dev='xvda' bus='xen'/>
      </disk>
    </devices>
    {state}
  </domain>"""


def node_uri(
    tmp_path: Path, file: str, domains: list[tuple[str, str, bool]], *, vcpus: int = 1
) -> str:
    """A test-driver node file holding ``domains`` (name, uuid, running); its URI."""
    body = "\n".join(
        domain_xml(name, uuid, running=running, vcpus=vcpus) for name, uuid, running in domains
    )
    path = tmp_path / file
    path.write_text(
        "<node><cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>"
        f"<cores>4</cores><threads>1</threads></cpu><memory>16777216</memory>{body}</node>",
        encoding="utf-8",
    )
    return "test://" + urllib.parse.quote(str(path), safe="/")


def estate_of(*hosts: tuple[str, str, str]) -> EstateConfig:
    """(pool, host, uri) → an estate."""
    pools: dict[str, list[HostConfig]] = {}
    for pool, name, uri in hosts:
        pools.setdefault(pool, []).append(HostConfig(pool, name, libvirt=uri))
    return EstateConfig(tuple(PoolConfig(p, tuple(h)) for p, h in pools.items()), "test")


def estate_toml(path: Path, *hosts: tuple[str, str, str]) -> Path:
    lines: list[str] = []
    for pool in dict.fromkeys(pool for pool, _, _ in hosts):
        lines += ["[[pools]]", f"name = {json.dumps(pool)}"]
        for p, name, uri in hosts:
            if p == pool:
                lines += [
                    "[[pools.hosts]]",
                    f"name = {json.dumps(name)}",
                    f"libvirt = {json.dumps(uri)}",
                ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def polled(estate: EstateConfig) -> AsyncIterator[EstatePoller]:
    poller = EstatePoller([PolledHost(backend_for(h), h.roles) for h in estate.hosts])
    try:
        yield poller
    finally:
        await poller.close()


def fixed_clock() -> float:
    return FIXED_NOW


class RecordingJournal:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.finished: list[tuple[int, bool, str | None]] = []

    async def journal_started(self, **record: Any) -> int:
        self.started.append(record)
        return len(self.started)

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int:
        self.finished.append((started_id, ok, detail))
        return 100 + started_id


def rewrite_archive(path: Path, change: dict[str, bytes | None], extra: dict[str, bytes]) -> None:
    """Rewrite ``path`` with members replaced (None: dropped) and members added."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            new = change.get(member.name, data)
            if new is None:
                continue
            member.size = len(new)
            tar.addfile(member, io.BytesIO(new))
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def edit_definition(path: Path, member: str, old: bytes, new: bytes) -> None:
    """Change a definition and write its new SHA-256 into the manifest, as someone covering
    their tracks would: every checksum of the archive still matches."""
    with tarfile.open(path, "r:gz") as tar:
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert old in data
    data = data.replace(old, new)
    for vm in manifest["vms"]:
        if vm["file"] == member:
            vm["sha256"], vm["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    rewrite_archive(path, {member: data, "manifest.json": json.dumps(manifest).encode()}, {})


def repository_id(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        [(value,)] = db.execute("SELECT value FROM meta WHERE key = 'repository_id'")
    return str(value)


def xml_identity(text: str) -> tuple[str | None, str | None]:
    root = ET.fromstring(text)
    return root.findtext("name"), root.findtext("uuid")


def extracted(archive: Path, target: Path) -> set[str]:
    """Extract as ``tar`` would; the "data" filter raises for any member leaving ``target``."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    return {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args], capture_output=True, text=True, timeout=60
    )


# --------------------------------------------------------------------------- test:///default


class SharedNode:
    """The test's own connection to test:///default, the one node this process shares:
    what it changes, every backend of the process sees."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.defined: list[str] = []

    def define(self, name: str, *, vcpus: int = 1) -> str:
        uuid = new_uuid()
        self.conn.defineXML(domain_xml(name, uuid, node=False, vcpus=vcpus))
        self.defined.append(uuid)
        return uuid

    def domain(self, uuid: str) -> Any:
        return self.conn.lookupByUUIDString(uuid)


@pytest.fixture
def shared_node() -> Iterator[SharedNode]:
    import libvirt

    from ovmtui.backend.libvirt import _ensure_libvirt_runtime

    _ensure_libvirt_runtime()  # before the open: no libvirt printouts, events delivered
    node = SharedNode(libvirt.open("test:///default"))
    try:
        yield node
    finally:
        for uuid in node.defined:  # leave the shared node as it was for other tests
            with contextlib.suppress(libvirt.libvirtError):
                dom = node.domain(uuid)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        node.conn.close()


@dataclasses.dataclass
class Recovery:
    """Host p/a (test:///default) has VM ``name`` (2 vCPUs); p/b (a node file) does not.
    The archive is signed with ``KEY``."""

    name: str
    uuid: str
    estate: EstateConfig
    archive: DefinitionArchive
    node: SharedNode


@pytest.fixture
async def recovery(tmp_path: Path, shared_node: SharedNode) -> Recovery:
    name = f"rescue-{new_uuid()[:8]}"
    uuid = shared_node.define(name, vcpus=2)
    b_uri = node_uri(tmp_path, "b.xml", [("bystander", new_uuid(), True)])
    estate = estate_of(("p", "a", "test:///default"), ("p", "b", b_uri))
    async with polled(estate) as poller:
        snapshot = await poller.poll_once()
        result = await export_definitions(snapshot, poller.backend, tmp_path / "out", key=KEY)
    assert result.complete, result
    return Recovery(name, uuid, estate, read_archive(result.path), shared_node)


# --------------------------------------------------------------------------- export


async def test_demo_estate_exports_every_vm_verified(tmp_path: Path) -> None:
    async with polled(demo_estate()) as poller:
        snapshot = await poller.poll_once()
        result = await export_definitions(
            snapshot, poller.backend, tmp_path / "defs", clock=fixed_clock
        )
    assert result.path == tmp_path / "defs" / "definitions-20010909T014640000000Z.tar.gz"
    assert (result.exported, result.hosts, result.complete) == (64, 5, True)
    assert [p.name for p in (tmp_path / "defs").iterdir()] == [result.path.name]  # no .partial
    archive = read_archive(result.path)
    assert archive.created_at == "2001-09-09T01:46:40.000000Z"
    assert len(archive.entries) == 64
    placed = {p.uuid: p for p in snapshot.placed_vms()}
    assert {e.uuid for e in archive.entries} == set(placed)
    with tarfile.open(result.path, "r:gz") as tar:
        assert tar.getnames()[0] == "manifest.json"
    for entry in archive.entries:
        where = placed[entry.uuid]
        assert (entry.pool, entry.host, entry.name) == (where.pool, where.host, where.vm.name)
        assert entry.state == where.vm.state.value and entry.kind == "libvirt-xml"
        assert entry.member == f"{entry.pool}/{entry.host}/{entry.name}--{entry.uuid}.xml"
        assert xml_identity(archive.read(entry)) == (entry.name, entry.uuid)


async def test_unreachable_host_is_reported_and_the_rest_exported(tmp_path: Path) -> None:
    uri = node_uri(tmp_path, "a.xml", [("web01", new_uuid(), True), ("db01", new_uuid(), False)])
    estate = estate_of(("p", "a", uri), ("p", "dead", DEAD_URI))
    async with polled(estate) as poller:
        snapshot = await poller.poll_once()
        result = await export_definitions(snapshot, poller.backend, tmp_path)
    assert not result.complete
    assert (result.exported, result.failures) == (2, ())
    assert [(p.pool, p.host) for p in result.unreachable] == [("p", "dead")]
    archive = read_archive(result.path)
    assert sorted(e.name for e in archive.entries) == ["db01", "web01"]
    assert [p.host for p in archive.unreachable] == ["dead"]
    assert "127.0.0.1:1" in archive.unreachable[0].error


async def test_vm_gone_before_its_definition_is_read_is_a_failure(
    tmp_path: Path, shared_node: SharedNode
) -> None:
    name = f"vanishing-{new_uuid()[:8]}"
    uuid = shared_node.define(name)
    async with polled(estate_of(("p", "a", "test:///default"))) as poller:
        snapshot = await poller.poll_once()
        shared_node.domain(uuid).undefine()
        result = await export_definitions(snapshot, poller.backend, tmp_path)
    assert not result.complete
    [failure] = result.failures
    assert (failure.vm, failure.uuid) == (name, uuid)
    assert "not defined" in failure.error
    archive = read_archive(result.path)
    assert uuid not in {e.uuid for e in archive.entries}
    assert archive.entries  # the others (the default node's own "test" VM) are there
    assert [(f.vm, f.uuid) for f in archive.failures] == [(name, uuid)]


async def test_a_failed_write_leaves_no_partial_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_addfile = tarfile.TarFile.addfile
    calls = 0

    def failing_addfile(self: tarfile.TarFile, *args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError(28, "No space left on device")
        real_addfile(self, *args, **kw)

    monkeypatch.setattr(tarfile.TarFile, "addfile", failing_addfile)
    async with polled(demo_estate()) as poller:
        snapshot = await poller.poll_once()
        with pytest.raises(ArchiveError, match=r"failed: no space left on /.*no partial archive"):
            await export_definitions(snapshot, poller.backend, tmp_path / "defs")
    assert calls == 5
    assert list((tmp_path / "defs").iterdir()) == []


def test_an_abandoned_write_is_not_published(tmp_path: Path) -> None:
    # What a cancelled export does to the thread still writing the archive.
    abandon = threading.Event()
    abandon.set()
    fetched = [definitions_module._Fetched("p", "a", Vm(new_uuid(), "x", VmState.SHUTOFF), "<d/>")]
    with pytest.raises(definitions_module._Abandoned):
        definitions_module._write_archive(tmp_path, FIXED_NOW, fetched, (), (), (), abandon)
    assert list(tmp_path.iterdir()) == []


async def test_hostile_libvirt_names_stay_inside_their_folders(tmp_path: Path) -> None:
    # libvirt itself refuses '/' in a name; everything else a shell or tar could trip on.
    names = ["x; rm -rf ~", "..", ".hidden", "-rf", "$(reboot)", "a\\..\\..\\b", "é<&>'\""]
    uri = node_uri(tmp_path, "a.xml", [(n, new_uuid(), False) for n in names])
    async with polled(estate_of(("p", "a", uri))) as poller:
        snapshot = await poller.poll_once()
        result = await export_definitions(snapshot, poller.backend, tmp_path / "out")
    assert result.complete and result.exported == len(names)
    archive = read_archive(result.path)
    assert sorted(e.name for e in archive.entries) == sorted(names)
    for entry in archive.entries:
        assert SAFE_MEMBER.fullmatch(entry.member), entry.member
        assert entry.member.startswith("p/a/")
        assert xml_identity(archive.read(entry)) == (entry.name, entry.uuid)
    files = extracted(result.path, tmp_path / "extracted")
    assert files == {"manifest.json"} | {e.member for e in archive.entries}
    assert archive.find("..").name == ".."


class SlashNamedHost:
    """A definition source whose VMs have names libvirt would refuse (Xen's would not)."""

    host = HostKey("prod", "xen01")
    address = "fake://xen01"
    capabilities = frozenset(definitions_module.Capability)

    async def definition(self, vm: Vm) -> str:
        return domain_xml(vm.name, vm.uuid, node=False)

    async def define(self, definition: str) -> str:
        raise AssertionError("not used")


async def test_names_with_slashes_cannot_escape_the_archive(tmp_path: Path) -> None:
    names = ["../../evil", "x; rm -rf /", "/etc/passwd", "../../../../tmp/owned"]
    vms = tuple(Vm(new_uuid(), name, VmState.SHUTOFF) for name in names)
    host = HostStatus("prod", "xen01", "fake://xen01", vms=vms, reachable=True, taken_at=1.0)
    source = SlashNamedHost()
    result = await export_definitions(
        EstateSnapshot((host,)),
        lambda key: source if key == source.host else None,  # type: ignore[return-value]
        tmp_path / "out",
    )
    assert result.complete and result.exported == 4
    archive = read_archive(result.path)
    members = sorted(e.member for e in archive.entries)
    for member in members:
        assert SAFE_MEMBER.fullmatch(member) and member.startswith("prod/xen01/")
        assert member.count("/") == 2
    evil = archive.find("../../evil")
    assert evil.member == f"prod/xen01/_.._evil--{evil.uuid}.xml"
    assert archive.find("x; rm -rf /").member.startswith("prod/xen01/x_rm_-rf_--")
    assert safe_part("../../etc/x") == "_.._etc_x" and safe_part("") == "_"
    assert extracted(result.path, tmp_path / "extracted") == {"manifest.json", *members}


# --------------------------------------------------------------------------- reading


@pytest.fixture
async def small_archive(tmp_path: Path) -> Path:
    uri = node_uri(tmp_path, "a.xml", [("web01", new_uuid(), True), ("db01", new_uuid(), False)])
    async with polled(estate_of(("p", "a", uri))) as poller:
        result = await export_definitions(await poller.poll_once(), poller.backend, tmp_path)
    return result.path


def test_a_changed_definition_is_refused_naming_it(small_archive: Path) -> None:
    entry = next(e for e in read_archive(small_archive).entries if e.name == "web01")
    changed = entry.member
    with tarfile.open(small_archive, "r:gz") as tar:
        original = tar.extractfile(changed).read()  # type: ignore[union-attr]
    # Same size, different disk: the size check alone would not see it.
    rewrite_archive(small_archive, {changed: original.replace(b"sharedDisk", b"sharedDiks")}, {})
    with pytest.raises(ArchiveError, match=re.escape(changed) + ".*checksum mismatch"):
        read_archive(small_archive)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        ({}, {"p/a/intruder.xml": b"<domain/>"}, "'p/a/intruder.xml' is not in its manifest"),
        ({"manifest.json": b"{not json"}, {}, "manifest.json: not valid JSON"),
        ({"manifest.json": b'{"format": "something-else"}'}, {}, "not an ovmtui definitions"),
    ],
)
def test_foreign_or_tampered_archives_are_refused(
    small_archive: Path, change: dict[str, bytes | None], extra: dict[str, bytes], message: str
) -> None:
    rewrite_archive(small_archive, change, extra)
    with pytest.raises(ArchiveError, match=re.escape(message)):
        read_archive(small_archive)


def test_a_missing_member_or_a_link_is_refused(small_archive: Path) -> None:
    entry = read_archive(small_archive).entries[0]
    rewrite_archive(small_archive, {entry.member: None}, {})
    with pytest.raises(ArchiveError, match=re.escape(entry.member) + " listed in manifest"):
        read_archive(small_archive)
    with tarfile.open(small_archive, "r:gz") as tar:
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
    with tarfile.open(small_archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        link = tarfile.TarInfo(entry.member)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ArchiveError, match="not a regular file"):
        read_archive(small_archive)


def test_files_that_are_no_archive_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ArchiveError, match="not a readable definitions archive"):
        read_archive(garbage)
    with pytest.raises(ArchiveError, match="no such file"):
        read_archive(tmp_path / "missing.tar.gz")
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        info = tarfile.TarInfo("etc/hosts")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match="first member is 'etc/hosts'"):
        read_archive(foreign)


async def test_an_ambiguous_name_lists_the_uuids(tmp_path: Path) -> None:
    one, two = new_uuid(), new_uuid()
    estate = estate_of(
        ("p", "a", node_uri(tmp_path, "a.xml", [("twin", one, False)])),
        ("q", "b", node_uri(tmp_path, "b.xml", [("twin", two, False)])),
    )
    async with polled(estate) as poller:
        result = await export_definitions(await poller.poll_once(), poller.backend, tmp_path)
    archive = read_archive(result.path)
    with pytest.raises(ActionRefused, match="2 VMs named 'twin'") as refused:
        archive.find("twin")
    assert one in str(refused.value) and two in str(refused.value)
    assert archive.find(two.upper()).host == "b"
    with pytest.raises(VmNotFound):
        archive.find("nobody")


# --------------------------------------------------------------------------- import


async def test_a_vm_lost_with_its_host_is_defined_on_another(recovery: Recovery) -> None:
    recovery.node.domain(recovery.uuid).undefine()  # host a forgets it
    journal = RecordingJournal()
    async with polled(recovery.estate) as poller:
        snapshot = await poller.poll_once()
        result = await import_definition(
            recovery.archive,
            recovery.name,
            HostKey("p", "b"),
            snapshot,
            poller.backend,
            journal=journal,
            key=KEY,
        )
        after = await poller.poll_once()
    assert result.uuid == recovery.uuid
    found = after.find_vm(recovery.uuid)
    assert found is not None and found.host_key == HostKey("p", "b")
    assert (found.vm.name, found.vm.state) == (recovery.name, VmState.SHUTOFF)
    [started] = journal.started
    assert started["operation"] == "import-definition"
    assert (started["pool"], started["host"], started["vm"], started["uuid"]) == (
        "p",
        "b",
        recovery.name,
        recovery.uuid,
    )
    assert started["user"] == current_user()
    assert shlex.split(started["command"]) == [
        "ovmtui",
        "import-definition",
        str(recovery.archive.path),
        recovery.name,
        "--host",
        "p/b",
    ]
    assert journal.finished == [
        (1, True, f"archive verified: signed by this repository {KEY.repository}")
    ]


async def refused(recovery: Recovery, target: str, match: str, **kw: Any) -> None:
    """The import is refused, journaled as failed, and changes nothing on any host."""
    journal = RecordingJournal()

    def where(snapshot: EstateSnapshot) -> list[str]:
        return [h.name for h in snapshot.hosts if any(v.uuid == recovery.uuid for v in h.vms)]

    async with polled(recovery.estate) as poller:
        before = await poller.poll_once()
        with pytest.raises(ActionRefused, match=match):
            await import_definition(
                recovery.archive,
                recovery.uuid,
                HostKey("p", target),
                kw.pop("snapshot", before),
                poller.backend,
                journal=journal,
                key=KEY,
                **kw,
            )
        assert where(await poller.poll_once()) == where(before)
    assert len(journal.started) == 1
    [(_, ok, detail)] = journal.finished
    assert not ok and detail is not None and "Nothing was defined" in detail


async def test_import_is_refused_while_defined_on_another_host(recovery: Recovery) -> None:
    await refused(recovery, "b", "still defined on p/a \\(shutoff\\).*undefine it there first")


async def test_import_is_refused_while_it_runs_somewhere(recovery: Recovery) -> None:
    recovery.node.domain(recovery.uuid).create()
    await refused(recovery, "b", "runs on p/a \\(running\\)")


async def test_import_is_refused_onto_the_host_that_has_it(recovery: Recovery) -> None:
    await refused(recovery, "a", "already defined on p/a")


async def test_import_is_refused_when_last_known_on_an_unreachable_host(
    recovery: Recovery,
) -> None:
    recovery.node.domain(recovery.uuid).undefine()
    async with polled(recovery.estate) as poller:
        live = await poller.poll_once()
    a = live.host(HostKey("p", "a"))
    b = live.host(HostKey("p", "b"))
    assert a is not None and b is not None
    record = Vm(recovery.uuid, recovery.name, VmState.RUNNING)
    down = dataclasses.replace(a, reachable=False, error="ssh: no route to host", vms=())
    # The snapshot's own stale data places it there...
    stale = EstateSnapshot((dataclasses.replace(down, vms=(record,), stale=True), b))
    await refused(
        recovery, "b", "last known on p/a \\(running\\), which is unreachable", snapshot=stale
    )
    # ...or the repository's last-known estate does.
    known = EstateSnapshot((dataclasses.replace(a, vms=(record,), stale=True),))
    await refused(
        recovery,
        "b",
        "no route to host.*lost for good",
        snapshot=EstateSnapshot((down, b)),
        known=known,
    )


async def test_import_is_refused_onto_an_unreachable_host(recovery: Recovery) -> None:
    recovery.node.domain(recovery.uuid).undefine()
    estate = estate_of(("p", "b", DEAD_URI))
    journal = RecordingJournal()
    async with polled(estate) as poller:
        snapshot = await poller.poll_once()
        with pytest.raises(ActionRefused, match="p/b is unreachable"):
            await import_definition(
                recovery.archive,
                recovery.name,
                HostKey("p", "b"),
                snapshot,
                poller.backend,
                journal=journal,
                key=KEY,
            )
    assert journal.finished[0][1] is False


async def test_a_definition_changed_after_reading_is_not_defined(recovery: Recovery) -> None:
    recovery.node.domain(recovery.uuid).undefine()
    entry = recovery.archive.find(recovery.name)
    text = recovery.archive.read(entry).replace("sharedDisk", "elsewhere!")
    rewrite_archive(recovery.archive.path, {entry.member: text.encode()}, {})
    journal = RecordingJournal()
    async with polled(recovery.estate) as poller:
        snapshot = await poller.poll_once()
        with pytest.raises(ArchiveError, match="checksum mismatch"):
            await import_definition(
                recovery.archive,
                recovery.name,
                HostKey("p", "b"),
                snapshot,
                poller.backend,
                journal=journal,
                key=KEY,
            )
        assert (await poller.poll_once()).find_vm(recovery.uuid) is None
    assert journal.finished[0][1] is False


# --------------------------------------------------------------------------- signatures


async def test_the_signature_is_the_hmac_of_the_manifest_bytes(
    recovery: Recovery, small_archive: Path
) -> None:
    with tarfile.open(recovery.archive.path, "r:gz") as tar:
        assert tar.getnames()[:2] == ["manifest.json", "manifest.sig"]
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
        signature = json.loads(tar.extractfile("manifest.sig").read())  # type: ignore[union-attr]
    assert signature == {
        "format": "ovmtui-definitions-signature",
        "algorithm": "hmac-sha256",
        "repository": KEY.repository,
        "hmac": hmac.new(KEY.secret, manifest, hashlib.sha256).hexdigest(),
    }
    assert json.loads(manifest)["format_version"] == 2
    assert recovery.archive.provenance(KEY) == Provenance(
        True, f"signed by this repository {KEY.repository}"
    )
    with tarfile.open(small_archive, "r:gz") as tar:  # exported without a key
        assert "manifest.sig" not in tar.getnames()
    assert not read_archive(small_archive).provenance(KEY).verified


async def test_an_own_untouched_archive_imports_and_the_journal_says_it_verified(
    recovery: Recovery,
) -> None:
    recovery.node.domain(recovery.uuid).undefine()
    journal = RecordingJournal()
    async with polled(recovery.estate) as poller:
        result = await import_definition(
            recovery.archive,
            recovery.name,
            HostKey("p", "b"),
            await poller.poll_once(),
            poller.backend,
            journal=journal,
            key=KEY,
        )
    assert result.provenance is not None and result.provenance.verified
    assert "--trust-archive" not in journal.started[0]["command"]
    [(_, ok, detail)] = journal.finished
    assert ok and detail == f"archive verified: signed by this repository {KEY.repository}"


async def test_an_edited_archive_is_refused_and_imported_only_when_trusted(
    recovery: Recovery,
) -> None:
    recovery.node.domain(recovery.uuid).undefine()  # host a is lost, and the VM with it
    entry = recovery.archive.find(recovery.name)
    edit_definition(recovery.archive.path, entry.member, b">2</vcpu>", b">6</vcpu>")
    archive = read_archive(recovery.archive.path)  # every checksum matches the edited manifest
    journal = RecordingJournal()
    async with polled(recovery.estate) as poller:
        snapshot = await poller.poll_once()

        async def attempt(**kw: Any) -> definitions_module.ImportResult:
            return await import_definition(
                archive,
                recovery.name,
                HostKey("p", "b"),
                snapshot,
                poller.backend,
                journal=journal,
                key=KEY,
                **kw,
            )

        with pytest.raises(ActionRefused, match=re.escape(CHANGED)) as refusal:
            await attempt()
        assert refusal.value.title == "Archive not verified"
        assert "--trust-archive" in str(refusal.value) and "Nothing was defined" in str(
            refusal.value
        )
        assert (await poller.poll_once()).find_vm(recovery.uuid) is None
        result = await attempt(trust_archive=True)
        found = (await poller.poll_once()).find_vm(recovery.uuid)
    assert found is not None and found.host_key == HostKey("p", "b")
    assert found.vm.vcpus == 6  # what the edit said: the operator was warned, and chose
    assert result.provenance == Provenance(False, CHANGED)
    (_, refused_ok, refused_detail), (_, ok, detail) = journal.finished
    assert not refused_ok and refused_detail is not None and CHANGED in refused_detail
    assert ok and detail == NOT_VERIFIED + CHANGED + BECAUSE_TRUSTED
    assert shlex.split(journal.started[1]["command"])[-1] == "--trust-archive"


def _forge(path: Path) -> None:
    forged = {
        "format": "ovmtui-definitions-signature",
        "algorithm": "hmac-sha256",
        "repository": KEY.repository,
        "hmac": "00" * 32,
    }
    rewrite_archive(path, {"manifest.sig": json.dumps(forged).encode()}, {})


def _older_ovmtui(path: Path) -> None:
    with tarfile.open(path, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["format_version"] = 1
    rewrite_archive(
        path, {"manifest.json": json.dumps(manifest).encode(), "manifest.sig": None}, {}
    )


OTHER_KEY = ArchiveKey("fedcba9876543210fedcba9876543210", b"\x01" * 32)


@pytest.mark.parametrize(
    ("change", "importer", "reason"),
    [
        (None, OTHER_KEY, f"signed by another repository {KEY.repository}"),
        (
            lambda p: rewrite_archive(p, {"manifest.sig": None}, {}),
            KEY,
            "not signed (its manifest.sig is missing)",
        ),
        (_older_ovmtui, KEY, "not signed (made by an older ovmtui, before signatures)"),
        (_forge, KEY, CHANGED),
        (
            lambda p: rewrite_archive(p, {"manifest.sig": b"{"}, {}),
            KEY,
            "its manifest.sig is unreadable (not valid JSON",
        ),
    ],
    ids=["another-repository", "signature-removed", "older-ovmtui", "forged", "garbled"],
)
async def test_an_archive_from_elsewhere_is_refused_unless_trusted(
    recovery: Recovery,
    change: Callable[[Path], None] | None,
    importer: ArchiveKey,
    reason: str,
) -> None:
    recovery.node.domain(recovery.uuid).undefine()
    if change is not None:
        change(recovery.archive.path)
    archive = read_archive(recovery.archive.path)
    journal = RecordingJournal()
    async with polled(recovery.estate) as poller:
        snapshot = await poller.poll_once()

        async def attempt(**kw: Any) -> definitions_module.ImportResult:
            return await import_definition(
                archive,
                recovery.uuid,
                HostKey("p", "b"),
                snapshot,
                poller.backend,
                journal=journal,
                key=importer,
                **kw,
            )

        with pytest.raises(ActionRefused, match=re.escape(reason)):
            await attempt()
        assert (await poller.poll_once()).find_vm(recovery.uuid) is None
        await attempt(trust_archive=True)
        assert (await poller.poll_once()).find_vm(recovery.uuid) is not None
    (_, refused_ok, _), (_, ok, detail) = journal.finished
    assert not refused_ok and ok
    assert detail is not None and detail.startswith(NOT_VERIFIED + reason)
    assert detail.endswith(BECAUSE_TRUSTED)


# --------------------------------------------------------------------------- the CLI


def test_cli_export_and_import_with_their_refusals(tmp_path: Path) -> None:
    web, db = new_uuid(), new_uuid()
    a = node_uri(tmp_path, "a.xml", [("web01", web, False), ("db 01; x", db, True)])
    b = node_uri(tmp_path, "b.xml", [("other", new_uuid(), True)])
    repo = tmp_path / "repo.sqlite"
    both = estate_toml(tmp_path / "both.toml", ("prod", "a", a), ("prod", "b", b))
    common = ("--repository", str(repo))

    proc = run_cli("export-definitions", "--config", str(both), *common)
    assert proc.returncode == 0, proc.stderr
    path_line, summary = proc.stdout.splitlines()[:2]
    archive = Path(path_line)
    assert archive.parent == tmp_path / "definitions"
    assert re.fullmatch(r"definitions-\d{8}T\d{12}Z\.tar\.gz", archive.name)
    assert "exported 3 VM definitions from 2 hosts; 0 failed" in summary
    assert len(read_archive(archive).entries) == 3

    proc = run_cli(
        "import-definition", str(archive), "web01", "--host", "b", "--config", str(both), *common
    )
    assert proc.returncode == 2
    assert "Import refused" in proc.stderr and "still defined on prod/a" in proc.stderr

    proc = run_cli(
        "import-definition", str(archive), db, "--host", "prod/b", "--config", str(both), *common
    )
    assert proc.returncode == 2 and "runs on prod/a" in proc.stderr

    # Host a is lost and the operator removed it from the estate file.
    lost = estate_toml(tmp_path / "lost.toml", ("prod", "b", b))
    proc = run_cli(
        "import-definition",
        str(archive),
        "web01",
        "--host",
        "prod/b",
        "--config",
        str(lost),
        *common,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"defined web01 ({web}) on prod/b" in proc.stdout

    # ...or it is still in the file but does not answer: its last-known state is enough.
    dead = estate_toml(tmp_path / "dead.toml", ("prod", "a", DEAD_URI), ("prod", "b", b))
    proc = run_cli(
        "import-definition", str(archive), "web01", "--host", "b", "--config", str(dead), *common
    )
    assert proc.returncode == 2
    assert "last known on prod/a" in proc.stderr and "unreachable" in proc.stderr
    proc = run_cli(
        "import-definition", str(archive), "web01", "--host", "a", "--config", str(dead), *common
    )
    assert proc.returncode == 2 and "prod/a is unreachable" in proc.stderr

    proc = run_cli("audit", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["operation"] for r in records] == ["import-definition"] * 5
    assert [r["ok"] for r in records] == [False, False, True, False, False]
    done = records[2]
    assert (done["pool"], done["host"], done["vm"], done["uuid"]) == ("prod", "b", "web01", web)
    assert done["user"] == current_user()
    assert done["detail"] == f"archive verified: signed by this repository {repository_id(repo)}"
    assert done["command"] == shlex.join(
        ["ovmtui", "import-definition", str(archive), "web01", "--host", "prod/b"]
    )
    assert "runs on prod/a" in records[1]["detail"]


def test_cli_export_with_a_dead_host_exits_1_and_keeps_the_rest(tmp_path: Path) -> None:
    a = node_uri(tmp_path, "a.xml", [("web01", new_uuid(), True)])
    config = estate_toml(tmp_path / "e.toml", ("prod", "a", a), ("prod", "dead", DEAD_URI))
    out = tmp_path / "elsewhere"
    proc = run_cli(
        "export-definitions",
        "--config",
        str(config),
        "--repository",
        str(tmp_path / "r.sqlite"),
        "--to",
        str(out),
    )
    assert proc.returncode == 1, proc.stderr
    assert "UNREACHABLE prod/dead" in proc.stdout
    [archive] = list(out.iterdir())
    assert Path(proc.stdout.splitlines()[0]) == archive
    assert [e.name for e in read_archive(archive).entries] == ["web01"]


def test_cli_an_edited_archive_is_refused_until_trust_archive(tmp_path: Path) -> None:
    web = new_uuid()
    a = node_uri(tmp_path, "a.xml", [("web01", web, False)], vcpus=2)
    b = node_uri(tmp_path, "b.xml", [])
    repo = tmp_path / "repo.sqlite"
    both = estate_toml(tmp_path / "both.toml", ("prod", "a", a), ("prod", "b", b))
    proc = run_cli("export-definitions", "--config", str(both), "--repository", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert f"signed by repository {repository_id(repo)}" in proc.stdout
    archive = Path(proc.stdout.splitlines()[0])
    edit_definition(archive, f"prod/a/web01--{web}.xml", b">2</vcpu>", b">6</vcpu>")

    lost = estate_toml(tmp_path / "lost.toml", ("prod", "b", b))
    args = ("import-definition", str(archive), "web01", "--host", "prod/b", "--config", str(lost))
    proc = run_cli(*args, "--repository", str(repo))
    assert proc.returncode == 2
    assert "Archive not verified" in proc.stderr and CHANGED in proc.stderr
    assert "--trust-archive" in proc.stderr and "Nothing was defined" in proc.stderr

    proc = run_cli(*args, "--repository", str(repo), "--trust-archive")
    assert proc.returncode == 0, proc.stderr
    assert f"defined web01 ({web}) on prod/b" in proc.stdout
    assert NOT_VERIFIED + CHANGED in proc.stderr  # said where a 3 a.m. operator looks

    records = json.loads(run_cli("audit", "--json", "--repository", str(repo)).stdout)
    assert [r["ok"] for r in records] == [False, True]
    assert CHANGED in records[0]["detail"]
    assert records[1]["detail"] == NOT_VERIFIED + CHANGED + BECAUSE_TRUSTED
    assert shlex.split(records[1]["command"])[-1] == "--trust-archive"


def test_cli_an_archive_of_another_repository_is_refused_until_trust_archive(
    tmp_path: Path,
) -> None:
    web = new_uuid()
    a = node_uri(tmp_path, "a.xml", [("web01", web, False)])
    b = node_uri(tmp_path, "b.xml", [])
    elsewhere, here = tmp_path / "elsewhere.sqlite", tmp_path / "here.sqlite"
    both = estate_toml(tmp_path / "both.toml", ("prod", "a", a), ("prod", "b", b))
    proc = run_cli("export-definitions", "--config", str(both), "--repository", str(elsewhere))
    assert proc.returncode == 0, proc.stderr
    archive = Path(proc.stdout.splitlines()[0])

    lost = estate_toml(tmp_path / "lost.toml", ("prod", "b", b))
    args = ("import-definition", str(archive), web, "--host", "b", "--config", str(lost))
    proc = run_cli(*args, "--repository", str(here))
    reason = f"signed by another repository {repository_id(elsewhere)}"
    assert proc.returncode == 2
    assert "Archive not verified" in proc.stderr and reason in proc.stderr
    assert repository_id(here) in proc.stderr  # which repository it was checked against

    proc = run_cli(*args, "--repository", str(here), "--trust-archive")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(run_cli("audit", "--json", "--repository", str(here)).stdout)
    assert [r["ok"] for r in records] == [False, True]
    assert records[1]["detail"] == NOT_VERIFIED + reason + BECAUSE_TRUSTED


def test_cli_refuses_a_tampered_archive(small_archive: Path, tmp_path: Path) -> None:
    entry = read_archive(small_archive).entries[0]
    rewrite_archive(small_archive, {entry.member: b"<domain><name>evil</name></domain>"}, {})
    config = estate_toml(tmp_path / "e.toml", ("prod", "b", node_uri(tmp_path, "b.xml", [])))
    proc = run_cli(
        "import-definition",
        str(small_archive),
        entry.name,
        "--host",
        "b",
        "--config",
        str(config),
        "--repository",
        str(tmp_path / "r.sqlite"),
    )
    assert proc.returncode == 2
    assert "Unusable definitions archive" in proc.stderr and entry.member in proc.stderr


async def test_libvirt_define_answers_the_uuid_or_libvirts_own_words(tmp_path: Path) -> None:
    from ovmtui.backend.libvirt import LibvirtBackend
    from ovmtui.errors import ActionFailed

    taken = new_uuid()
    uri = node_uri(tmp_path, "b.xml", [("web01", taken, False)])
    backend = LibvirtBackend(HostKey("p", "b"), uri)
    try:
        fresh = new_uuid()
        assert await backend.define(domain_xml("fresh", fresh, node=False)) == fresh
        with pytest.raises(ActionFailed, match=f"web01.*{taken}") as failed:
            await backend.define(domain_xml("web01", new_uuid(), node=False))
        assert failed.value.title == "Define failed"
        names = {vm.name: vm.uuid for vm in (await backend.poll()).vms}
        assert names == {"web01": taken, "fresh": fresh}
    finally:
        await backend.close()
