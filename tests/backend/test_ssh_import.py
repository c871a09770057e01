"""Imports run on an SSH-reached host (the fake dom0 of tests/sshfake, whose host's real
curl and wget run): real HTTP and FTP servers on loopback serve an ISO and a template
archive; the files land, the partial file never remains, and every bad case says why and
leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.ssh_import import import_over_ssh
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import ImportFailed, plan_import
from ovmtui.import_progress import ImportProgress
from tests.backend.test_xen_ssh_long import backend_for
from tests.import_servers import (
    ftp_server,
    http_server,
    make_iso,
    make_template,
    sha256,
    url_of,
)
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec

__all__ = ["fake_xen_servers"]  # a pytest fixture

ISO = make_iso(300_000)
TEMPLATE = make_template()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, int, Path]]:
    """(the HTTP server, the FTP port, the storage) with the ISO and the template served."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "el5.iso").write_bytes(ISO)
    (root / "OVM_EL5U3.tgz").write_bytes(TEMPLATE)
    storage = tmp_path / "OVS"
    storage.mkdir()
    with http_server(root) as http, ftp_server(root) as ftp_port:
        yield http, ftp_port, storage


@pytest.fixture
async def dom0(fake_xen_servers: Any) -> Any:
    server = fake_xen_servers([HostSpec("xen-u", domains=[])])
    backend = backend_for(server.hosts[0])
    yield backend
    await backend.close()


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_an_iso_over_http_lands_checked_with_progress(
    dom0: XenSshBackend, served: tuple[Any, int, Path]
) -> None:
    http, _ftp, storage = served
    plan = plan_import(url_of(http, "el5.iso"), "iso", str(storage), sha256=sha256(ISO))
    readings: list[ImportProgress] = []
    done = await import_over_ssh(dom0, plan, progress=readings.append)
    final = storage / "iso_pool" / "el5" / "el5.iso"
    assert final.read_bytes() == ISO
    assert (done.path, done.size_bytes, done.sha256, done.tool) == (
        str(final),
        len(ISO),
        sha256(ISO),
        "curl",
    )
    assert tree(storage) == ["iso_pool", "iso_pool/el5", "iso_pool/el5/el5.iso"]
    phases = [r.phase for r in readings]
    assert phases[0] == "checking" and phases[-1] == "done"
    assert "downloading" in phases and "verifying" in phases
    downloading = [r for r in readings if r.phase == "downloading"]
    assert downloading[-1].done_bytes == len(ISO)
    assert all(r.total_bytes == len(ISO) for r in downloading)


async def test_a_template_archive_over_ftp_is_unpacked_into_its_folder(
    dom0: XenSshBackend, served: tuple[Any, int, Path]
) -> None:
    _http, ftp_port, storage = served
    url = f"ftp://127.0.0.1:{ftp_port}/OVM_EL5U3.tgz"
    plan = plan_import(url, "template", str(storage))
    assert plan.name == "OVM_EL5U3"
    await import_over_ssh(dom0, plan)
    folder = storage / "seed_pool" / "OVM_EL5U3"
    assert tree(storage) == [
        "seed_pool",
        "seed_pool/OVM_EL5U3",
        "seed_pool/OVM_EL5U3/System.img",
        "seed_pool/OVM_EL5U3/vm.cfg",
    ]
    assert (folder / "vm.cfg").read_text().startswith("name = 'OVM_EL5U3'")
    assert (folder / "System.img").stat().st_size == 200_000
    # --no-same-owner: the files are the importer's, not the archive's uid 4242
    assert (folder / "vm.cfg").stat().st_uid == os.getuid()


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_wget_serves_where_curl_is_missing(
    dom0: XenSshBackend, served: tuple[Any, int, Path], scheme: str
) -> None:
    http, ftp_port, storage = served
    url = url_of(http, "el5.iso") if scheme == "http" else f"ftp://127.0.0.1:{ftp_port}/el5.iso"
    plan = plan_import(url, "iso", str(storage), name="viawget", sha256=sha256(ISO))
    done = await import_over_ssh(dom0, plan, tools=("wget", True))
    assert done.tool == "wget"
    assert (storage / "iso_pool" / "viawget" / "viawget.iso").read_bytes() == ISO
    assert tree(storage) == ["iso_pool", "iso_pool/viawget", "iso_pool/viawget/viawget.iso"]


@pytest.mark.parametrize("tool", ["curl", "wget"])
@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("nowhere.iso", "the server answered 404"),
        ("loop", "a redirect loop"),
        ("huge/el5.iso", "the storage has"),
    ],
)
async def test_bad_urls_are_refused_and_leave_nothing(
    dom0: XenSshBackend, served: tuple[Any, int, Path], tool: str, path: str, why: str
) -> None:
    http, _ftp, storage = served
    plan = plan_import(url_of(http, path), "iso", str(storage), name="bad")
    with pytest.raises(ImportFailed, match=why):
        await import_over_ssh(dom0, plan, tools=(tool, True))  # type: ignore[arg-type]
    assert tree(storage) == []  # not even the folder it made


@pytest.mark.parametrize("tool", ["curl", "wget"])
async def test_an_unreachable_server_is_said(
    dom0: XenSshBackend, served: tuple[Any, int, Path], tool: str
) -> None:
    _http, _ftp, storage = served
    plan = plan_import("http://127.0.0.1:9/x.iso", "iso", str(storage))  # discard: closed
    with pytest.raises(ImportFailed, match=r"cannot be reached|refused the connection"):
        await import_over_ssh(dom0, plan, tools=(tool, True))  # type: ignore[arg-type]
    assert tree(storage) == []


async def test_a_checksum_mismatch_leaves_nothing(
    dom0: XenSshBackend, served: tuple[Any, int, Path]
) -> None:
    http, _ftp, storage = served
    plan = plan_import(url_of(http, "el5.iso"), "iso", str(storage), sha256="ab" * 32)
    with pytest.raises(ImportFailed, match=f"checksum mismatch: .* {sha256(ISO)}, not {'ab' * 32}"):
        await import_over_ssh(dom0, plan)
    assert tree(storage) == []


async def test_a_redirect_is_followed(dom0: XenSshBackend, served: tuple[Any, int, Path]) -> None:
    http, _ftp, storage = served
    plan = plan_import(url_of(http, "moved/el5.iso"), "iso", str(storage), name="moved")
    await import_over_ssh(dom0, plan)
    assert (storage / "iso_pool" / "moved" / "moved.iso").read_bytes() == ISO


async def test_a_name_taken_is_refused_before_any_download(
    dom0: XenSshBackend, served: tuple[Any, int, Path]
) -> None:
    http, _ftp, storage = served
    (storage / "iso_pool" / "el5").mkdir(parents=True)
    (storage / "iso_pool" / "el5" / "el5.iso").write_bytes(b"the operator's own")
    plan = plan_import(url_of(http, "el5.iso"), "iso", str(storage))
    with pytest.raises(ActionRefused, match="exists already"):
        await import_over_ssh(dom0, plan)
    assert (storage / "iso_pool" / "el5" / "el5.iso").read_bytes() == b"the operator's own"
    assert not any("GET" in r or "HEAD" in r for r in http.requests)


async def test_a_shell_in_the_url_stays_one_argument(
    dom0: XenSshBackend, served: tuple[Any, int, Path], tmp_path: Path
) -> None:
    http, _ftp, storage = served
    pwned = tmp_path / "pwned"
    url = url_of(http, f"el5.iso?x=$(touch${{IFS}}{pwned});touch${{IFS}}{pwned}")
    plan = plan_import(url, "iso", str(storage), name="quoted")
    await import_over_ssh(dom0, plan)
    assert not pwned.exists()
    assert (storage / "iso_pool" / "quoted" / "quoted.iso").read_bytes() == ISO


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ({"../evil": b"x", "vm.cfg": b"name='t'\n"}, "climbs out"),
        ({"/etc/evil": b"x", "vm.cfg": b"name='t'\n"}, "absolute path"),
        ({"t/System.img": b"x"}, "no vm.cfg"),
    ],
)
async def test_an_unsafe_or_foreign_archive_is_not_unpacked(
    dom0: XenSshBackend,
    served: tuple[Any, int, Path],
    tmp_path: Path,
    members: dict[str, bytes],
    why: str,
) -> None:
    http, _ftp, storage = served
    (tmp_path / "served" / "bad.tgz").write_bytes(make_template(members=members))
    (storage / "seed_pool").mkdir()
    plan = plan_import(url_of(http, "bad.tgz"), "template", str(storage))
    with pytest.raises(ImportFailed, match=why):
        await import_over_ssh(dom0, plan)
    assert tree(storage) == ["seed_pool"]  # the folder was there before: it stays
    assert not (tmp_path / "evil").exists()


def download_processes(partial: Path) -> list[int]:
    """Processes whose command line names ``partial`` (the download and its script)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(partial).encode() in cmdline:
            found.append(int(entry.name))
    return found


async def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    """Poll ``condition`` (processes on the host end by themselves: no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("tool", ["curl", "wget"])
async def test_cancel_stops_the_download_and_removes_the_partial_file(
    dom0: XenSshBackend, served: tuple[Any, int, Path], tmp_path: Path, tool: str
) -> None:
    http, _ftp, storage = served
    (tmp_path / "served" / "big.iso").write_bytes(make_iso(4 * 1024 * 1024))  # 64 pieces
    plan = plan_import(url_of(http, "slow/big.iso"), "iso", str(storage))
    partial = Path(plan.partial)
    started = asyncio.Event()

    def seen(reading: ImportProgress) -> None:
        if reading.phase == "downloading" and reading.done_bytes > 0:
            started.set()

    task = asyncio.create_task(
        import_over_ssh(dom0, plan, tools=(tool, True), progress=seen)  # type: ignore[arg-type]
    )
    await asyncio.wait_for(started.wait(), 20)
    assert partial.exists()  # noqa: ASYNC240  # a stat, in a test
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not download_processes(partial))
    assert not partial.exists()  # noqa: ASYNC240
    assert tree(storage) == []
