"""`ovmtui resource import` on fake Xen dom0s behind a real sshd, real HTTP and FTP servers
on loopback: the file lands through the pool's utility host, progress on stderr, the
journal and `ovmtui jobs` say what happened; refusals exit 1, bad requests 2, and nothing
is left behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ovmtui.storage_model import Resource, ResourceStatus
from ovmtui.store.repository import Repository
from tests.import_servers import ftp_server, http_server, make_iso, make_template, sha256, url_of
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec, SshdServer

__all__ = ["fake_xen_servers"]  # a pytest fixture

ISO = make_iso(200_000)


@pytest.fixture
def pool(
    fake_xen_servers: Callable[..., SshdServer], tmp_path: Path
) -> Iterator[tuple[Path, Path, Any, int, FakeXenHost]]:
    """(estate file, storage, HTTP server, FTP port, the utility host): xen-a is a plain
    host listed first, xen-u the pool's utility host."""
    server = fake_xen_servers(
        [
            HostSpec("xen-a", domains=[], toolstack="xm"),
            HostSpec("xen-u", domains=[], toolstack="xm"),
        ]
    )
    storage = tmp_path / "OVS"
    storage.mkdir()
    hosts = "".join(
        f'\n  [[pools.hosts]]\n  name = "{h.name}"\n  ssh = "{h.ssh_target}"\n'
        f'  identity = "{h.client_key}"\n  known_hosts = "{h.known_hosts}"\n  toolstack = "xm"\n'
        + ('  roles = ["utility"]\n' if h.name == "xen-u" else "")
        for h in server.hosts
    )
    config = tmp_path / "estate.toml"
    config.write_text(f'[[pools]]\nname = "prod"\nshared_storage = "{storage}"\n{hosts}')
    served = tmp_path / "served"
    served.mkdir()
    (served / "el5.iso").write_bytes(ISO)
    (served / "OVM_EL5U3.tgz").write_bytes(make_template())
    with http_server(served) as http, ftp_server(served) as ftp_port:
        yield config, storage, http, ftp_port, server.host("xen-u")


def ovmtui(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(config)]
    argv += ["--repository", str(config.parent / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


def imports_journaled(config: Path) -> list[dict[str, Any]]:
    done = ovmtui(config, "audit", "--json")
    assert done.returncode == 0, done.stderr
    return [r for r in json.loads(done.stdout) if r["operation"] == "import-resource"]


def jobs(config: Path) -> list[dict[str, Any]]:
    done = ovmtui(config, "jobs", "--json")
    assert done.returncode == 0, done.stderr
    return [j for j in json.loads(done.stdout) if j["kind"] == "import-resource"]


def library(config: Path) -> list[Resource]:
    async def read() -> list[Resource]:
        repo = await Repository.open(config.parent / "r.sqlite", read_only=True)
        try:
            return await repo.resources("prod")
        finally:
            await repo.close()

    return asyncio.run(read())


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_iso_lands_through_the_utility_host_on_the_record(
    pool: tuple[Path, Path, Any, int, FakeXenHost],
) -> None:
    config, storage, http, _ftp, _u = pool
    url = url_of(http, "el5.iso")
    done = ovmtui(config, "resource", "import", url, "--kind", "iso", "--sha256", sha256(ISO))
    assert done.returncode == 0, done.stderr
    assert (storage / "iso_pool/el5/el5.iso").read_bytes() == ISO
    assert files(storage) == ["iso_pool/el5/el5.iso"]
    assert f"importing {url} into {storage}/iso_pool/el5/el5.iso on xen-u" in done.stderr
    assert "el5 (iso) on xen-u: checking" in done.stderr
    assert "el5 (iso) on xen-u: done" in done.stderr
    assert done.stdout.startswith(f"{storage}/iso_pool/el5/el5.iso\t195 KiB\t")
    (record,) = imports_journaled(config)
    assert record["host"] == "xen-u" and record["ok"] is True
    assert record["command"] == (
        f"ovmtui resource import {url} --kind iso --name el5 --pool prod --sha256 {sha256(ISO)}"
    )
    (job,) = jobs(config)
    assert job["state"] == "done" and f"{storage}/iso_pool/el5/el5.iso" in job["detail"]
    (resource,) = library(config)
    assert (resource.kind.value, resource.name, resource.path, resource.status) == (
        "iso",
        "el5",
        f"{storage}/iso_pool/el5/el5.iso",
        ResourceStatus.PENDING,  # waits for an approval
    )
    assert (resource.size_bytes, resource.sha256, resource.source_url) == (
        len(ISO),
        sha256(ISO),
        url,
    )
    assert resource.imported_by == record["user"] and resource.percent is None


def test_a_template_over_ftp(pool: tuple[Path, Path, Any, int, FakeXenHost]) -> None:
    config, storage, _http, ftp_port, _u = pool
    url = f"ftp://127.0.0.1:{ftp_port}/OVM_EL5U3.tgz"
    done = ovmtui(config, "resource", "import", url, "--kind", "template", "--name", "el5tpl")
    assert done.returncode == 0, done.stderr
    assert files(storage) == ["seed_pool/el5tpl/System.img", "seed_pool/el5tpl/vm.cfg"]


@pytest.mark.parametrize(
    ("path", "sha", "why"),
    [
        ("nowhere.iso", None, "the server answered 404"),
        ("loop", None, "a redirect loop"),
        ("huge/el5.iso", None, "the storage has"),
        ("el5.iso", "00" * 32, "checksum mismatch"),
    ],
)
def test_a_failed_import_exits_1_leaves_nothing_and_says_why(
    pool: tuple[Path, Path, Any, int, FakeXenHost], path: str, sha: str | None, why: str
) -> None:
    config, storage, http, _ftp, _u = pool
    argv = ["resource", "import", url_of(http, path), "--kind", "iso", "--name", "x"]
    done = ovmtui(config, *argv, *(["--sha256", sha] if sha else []))
    assert done.returncode == 1, done.stderr
    assert "import of x failed" in done.stderr and why in done.stderr
    assert files(storage) == []
    (record,) = imports_journaled(config)
    assert record["ok"] is False and why in record["detail"]
    (job,) = jobs(config)
    assert job["state"] == "failed" and why in job["detail"]
    (resource,) = library(config)
    assert resource.status is ResourceStatus.FAILED and why in (resource.why or "")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["http://h/x.iso", "--kind", "iso", "--name", "x; touch /tmp/pwned"], "cannot hold '/'"),
        (["http://h/x.iso", "--kind", "iso", "--name", "a..b"], "'..'"),
        (["file:///etc/passwd", "--kind", "iso"], "scheme is 'file'"),
        (["http://h/x.iso", "--kind", "iso", "--sha256", "xyz"], "64 hexadecimal"),
        (["http://h/x.iso", "--kind", "iso", "--pool", "nope"], "no pool 'nope'"),
    ],
)
def test_a_bad_request_exits_2_before_any_host_is_asked(
    pool: tuple[Path, Path, Any, int, FakeXenHost], args: list[str], why: str
) -> None:
    config, storage, http, _ftp, _u = pool
    done = ovmtui(config, "resource", "import", *args)
    assert done.returncode == 2, done.stderr
    assert why in done.stderr
    assert files(storage) == [] and http.requests == []
    assert library(config) == []


def test_read_only_refuses_with_1(pool: tuple[Path, Path, Any, int, FakeXenHost]) -> None:
    config, storage, http, _ftp, _u = pool
    done = ovmtui(
        config, "--read-only", "resource", "import", url_of(http, "el5.iso"), "--kind", "iso"
    )
    assert done.returncode == 1 and "read-only" in done.stderr
    assert files(storage) == [] and http.requests == []


def test_without_a_utility_host_any_reachable_host_works_and_says_so(
    pool: tuple[Path, Path, Any, int, FakeXenHost],
) -> None:
    config, storage, http, _ftp, utility = pool
    utility.stop()  # TCP open, no answer
    try:
        done = ovmtui(config, "resource", "import", url_of(http, "el5.iso"), "--kind", "iso")
    finally:
        utility.cont()
    assert done.returncode == 0, done.stderr
    assert "no utility host answered (xen-u): read through xen-a" in done.stderr
    assert files(storage) == ["iso_pool/el5/el5.iso"]
