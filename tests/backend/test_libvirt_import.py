"""Imports into a libvirt host's storage, on libvirt's test driver: the folder's storage pool
defined when missing, the checks before any volume is made (the name free, the size within
the pool's free space), and a stream the host refuses (the test driver has no
``storageVolUpload``: a real failure) leaving no volume behind; a template's archive
checked member by member, and its folder made and taken back. The upload itself runs on
the lab (tests/e2e/lab/test_import.py, test_storage_lab.py)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.libvirt_template import template_members
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import ImportFailed, flat_plan, plan_import
from ovmtui.model import HostKey
from tests.import_servers import http_server, make_iso, make_template, url_of

STORAGE = "/OVS"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "el5.iso").write_bytes(make_iso(100_000))
    with http_server(tmp_path) as http:
        yield http


@pytest.fixture
async def backend(tmp_path: Path) -> Any:
    # A test driver of its own (a file): the default one is shared by the whole process.
    node = tmp_path / "node.xml"
    node.write_text("<node><cpu><mode>fixed</mode><active>2</active></cpu></node>")
    b = LibvirtBackend(HostKey("prod", "kvm1"), f"test://{node}")
    yield b
    await b.close()


def flat(url: str, **kw: Any) -> Any:
    return flat_plan(plan_import(url, "iso", STORAGE, **kw))


async def test_a_refused_stream_leaves_no_volume(backend: LibvirtBackend, served: Any) -> None:
    plan = flat(url_of(served, "el5.iso"))
    assert plan.final == "/OVS/iso_pool/el5.iso"  # a dir pool holds files: no folder per ISO
    with pytest.raises(ImportFailed, match="not supported"):
        await backend.import_volume("prod", plan)
    # the folder's pool was defined and started; the volume made for the upload is gone
    session = await backend._ensure_session()
    pools = session.conn.listAllStoragePools(0)
    (pool,) = [p for p in pools if p.name() == "ovmtui-prod-iso_pool"]
    assert pool.isActive() and pool.listAllVolumes(0) == []


async def test_the_checks_come_before_any_volume(backend: LibvirtBackend, served: Any) -> None:
    with pytest.raises(ImportFailed, match="the storage has"):
        await backend.import_volume("prod", flat(url_of(served, "huge/el5.iso"), name="x"))
    with pytest.raises(ImportFailed, match="the server answered 404"):
        await backend.import_volume("prod", flat(url_of(served, "nowhere.iso"), name="x"))
    with pytest.raises(ImportFailed, match="does not say the file's size"):
        await backend.import_volume("prod", flat(url_of(served, "chunked/el5.iso"), name="x"))
    session = await backend._ensure_session()
    pool = session.conn.storagePoolLookupByName("ovmtui-prod-iso_pool")
    pool.createXML("<volume><name>taken.iso</name><capacity>10</capacity></volume>", 0)
    with pytest.raises(ActionRefused, match="exists already"):
        await backend.import_volume("prod", flat(url_of(served, "el5.iso"), name="taken"))
    assert [v.name() for v in pool.listAllVolumes(0)] == ["taken.iso"]


def test_a_templates_plan_is_kept_for_a_libvirt_pool() -> None:
    plan = plan_import("http://h/t.tgz", "template", STORAGE)
    assert flat_plan(plan) is plan and plan.final == "/OVS/seed_pool/t"


def archive(members: dict[str, bytes | str | None]) -> tarfile.TarFile:
    """An archive in memory: a name to its bytes, a link target (str), or a folder (None)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                out.addfile(info)
            elif isinstance(data, str):
                info.type = tarfile.SYMTYPE
                info.linkname = data
                out.addfile(info)
            else:
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


CFG = b"name = 't'\n"


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ({"/etc/vm.cfg": CFG}, "absolute path"),
        ({"t/../vm.cfg": CFG, "t/x": b""}, "climbs out"),
        ({"t/vm.cfg": CFG, "t/evil": "/etc/passwd"}, "is a link"),
        ({"t/vm.cfg": CFG, "t/sub/": None, "t/sub/x": b"1"}, "folders of its own"),
        ({"t/vm.cfg": CFG, "t/sub/x": b"1"}, "in a folder of its own"),
        ({"t/System.img": b"1"}, "no vm.cfg"),
        ({}, "empty"),
    ],
)
def test_a_template_archive_libvirt_cannot_hold_is_refused(
    members: dict[str, bytes | str | None], why: str
) -> None:
    with pytest.raises(ImportFailed, match=why):
        template_members(archive(members))


def test_a_template_archive_in_one_folder_is_stripped() -> None:
    found = template_members(archive({"T/": None, "T/vm.cfg": CFG, "T/System.img": bytes(10)}))
    assert [(m.name, m.size) for m in found] == [("vm.cfg", len(CFG)), ("System.img", 10)]
    flat = template_members(archive({"vm.cfg": CFG}))
    assert [m.name for m in flat] == ["vm.cfg"]


async def test_a_template_the_host_cannot_take_leaves_nothing(
    backend: LibvirtBackend, tmp_path: Path
) -> None:
    (tmp_path / "tpl.tgz").write_bytes(make_template())
    (tmp_path / "bad.tgz").write_bytes(make_template(members={"t/System.img": b"x"}))
    with http_server(tmp_path) as http:
        bad = flat_plan(plan_import(url_of(http, "bad.tgz"), "template", STORAGE))
        with pytest.raises(ImportFailed, match=r"no vm\.cfg"):
            await backend.import_volume("prod", bad)
        plan = flat_plan(plan_import(url_of(http, "tpl.tgz"), "template", STORAGE))
        # The test driver cannot build a transient pool (the folder): a real failure after
        # the download and the checks, which must leave nothing. (The lab makes one.)
        with pytest.raises(ImportFailed, match="unsupported flags"):
            await backend.import_volume("prod", plan)
    session = await backend._ensure_session()
    names = [p.name() for p in session.conn.listAllStoragePools(0)]
    assert "ovmtui-prod-seed_pool" in names
    assert not [n for n in names if n.startswith("ovmtui-prod-seed_pool-")]
    seed = session.conn.storagePoolLookupByName("ovmtui-prod-seed_pool")
    seed.refresh(0)
    assert seed.listAllVolumes(0) == []
