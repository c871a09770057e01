"""Imports into a libvirt host's storage, on libvirt's test driver: the folder's storage pool
defined when missing, the checks before any volume is made (the name free, the size within
the pool's free space), and a stream the host refuses (the test driver has no
``storageVolUpload``: a real failure) leaving no volume behind. The upload itself runs on
the lab (tests/e2e/lab/test_import.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import BadImport, ImportFailed, flat_plan, plan_import
from ovmtui.model import HostKey
from tests.import_servers import http_server, make_iso, url_of

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


def test_a_template_cannot_go_to_a_libvirt_pool() -> None:
    with pytest.raises(BadImport, match="holds files only"):
        flat_plan(plan_import("http://h/t.tgz", "template", STORAGE))
