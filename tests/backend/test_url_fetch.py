"""ovmtui's own downloads (for libvirt hosts) from real HTTP and FTP servers on loopback:
bodies whole (sized, chunked, after a redirect), and each bad case said."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.url_fetch import fetch
from ovmtui.import_plan import ImportFailed
from tests.import_servers import ftp_server, http_server, make_iso, url_of

DATA = make_iso(3_000_001)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Any, int]]:
    (tmp_path / "el5.iso").write_bytes(DATA)
    with http_server(tmp_path) as http, ftp_server(tmp_path) as ftp_port:
        yield http, ftp_port


async def body(url: str) -> tuple[int | None, bytes]:
    async with fetch(url) as download:
        data = b"".join([chunk async for chunk in download.chunks()])
        return download.size, data


@pytest.mark.parametrize("path", ["el5.iso", "moved/el5.iso", "chunked/el5.iso", "slow/el5.iso"])
async def test_http_bodies_come_whole(servers: tuple[Any, int], path: str) -> None:
    http, _ftp = servers
    size, data = await body(url_of(http, path))
    assert data == DATA
    assert size == (None if path.startswith("chunked") else len(DATA))


async def test_ftp_bodies_come_whole(servers: tuple[Any, int]) -> None:
    _http, ftp_port = servers
    size, data = await body(f"ftp://127.0.0.1:{ftp_port}/el5.iso")
    assert (size, data) == (len(DATA), DATA)


async def test_leaving_early_stops_an_ftp_transfer(servers: tuple[Any, int]) -> None:
    _http, ftp_port = servers
    async with fetch(f"ftp://127.0.0.1:{ftp_port}/el5.iso") as download:
        async for _chunk in download.chunks():
            break
    _size, data = await body(f"ftp://127.0.0.1:{ftp_port}/el5.iso")  # the server serves on
    assert data == DATA


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("nowhere.iso", "the server answered 404"),
        ("loop", "a redirect loop"),
    ],
)
async def test_http_failures_are_said(servers: tuple[Any, int], path: str, why: str) -> None:
    http, _ftp = servers
    with pytest.raises(ImportFailed, match=why):
        await body(url_of(http, path))


async def test_ftp_and_connection_failures_are_said(servers: tuple[Any, int]) -> None:
    _http, ftp_port = servers
    with pytest.raises(ImportFailed, match="does not exist"):
        await body(f"ftp://127.0.0.1:{ftp_port}/nowhere.iso")
    with pytest.raises(ImportFailed, match="cannot be reached"):
        await body("http://127.0.0.1:9/x.iso")
    with pytest.raises(ImportFailed, match="cannot be reached"):
        await body("ftp://127.0.0.1:9/x.iso")
