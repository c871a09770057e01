"""`ovmtui host test NAME|--libvirt URI|--ssh TARGET [--json] [--accept-new-key]`, in a real
process: lines as checks complete, the JSON shape, exit 0 only when none failed, and an
unknown key added only with --accept-new-key (off a terminal the flag is the operator's word),
on the record, with the pool's marker holding the repository's id for the pool."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import SshdServer

__all__ = ["fake_xen_servers"]  # a pytest fixture


@pytest.fixture
def mounted() -> Iterator[Path]:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat("/").st_dev:
        pytest.skip("no /dev/shm file system apart from / on this machine")
    path = Path(tempfile.mkdtemp(prefix="ovmtui-shared-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ovmtui(
    tmp_path: Path, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui"]
    if config is not None:
        argv += ["--config", str(config)]
    argv += ["--repository", str(tmp_path / "r.sqlite"), *args]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env
    )


def xen_estate(tmp_path: Path, server: SshdServer, known_hosts: Path, storage: Path) -> Path:
    fake = server.hosts[0]
    path = tmp_path / "estate.toml"
    path.write_text(
        f'[[pools]]\nname = "pool1"\nshared_storage = "{storage}"\n\n'
        f'  [[pools.hosts]]\n  name = "xen01"\n  ssh = "{fake.ssh_target}"\n'
        f'  identity = "{fake.client_key}"\n  known_hosts = "{known_hosts}"\n'
        '  roles = ["master", "utility", "vm"]\n'
    )
    return path


def test_an_unknown_key_is_added_only_with_the_flag_then_every_check_passes(
    fake_xen_servers: Any, tmp_path: Path, mounted: Path
) -> None:
    server: SshdServer = fake_xen_servers(["xen01"], domains_per_host=1)
    server.hosts[0].set_service("ovs-agent", "running")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = xen_estate(tmp_path, server, known_hosts, mounted)

    first = ovmtui(tmp_path, "host", "test", "xen01", config=config)
    assert first.returncode == 1, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("xen01 (pool pool1): ")
    assert lines[1].startswith("ok    resolve")
    assert any(line.startswith("FAIL  ssh host key") for line in lines)
    assert any(line.startswith("skip  ssh login") for line in lines)
    assert "--accept-new-key" in first.stdout and lines[-1] == "FAILED"
    assert known_hosts.read_text() == ""

    second = ovmtui(tmp_path, "host", "test", "xen01", "--accept-new-key", "--json", config=config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "unknown to" in second.stderr and "added to" in second.stderr
    report = json.loads(second.stdout)
    assert report["host"] == "xen01"
    assert [c["ok"] for c in report["checks"]] == [True] * len(report["checks"])
    assert known_hosts.read_text().startswith(f"[127.0.0.1]:{server.hosts[0].port} ssh-ed25519 ")

    db = sqlite3.connect(tmp_path / "r.sqlite")
    pool_id = db.execute("SELECT pool_id FROM pools WHERE name = 'pool1'").fetchone()[0]
    operations = [r[0] for r in db.execute("SELECT operation FROM journal ORDER BY id")]
    db.close()
    assert (mounted / ".ovmtui-pool").read_text() == f"{pool_id}\n"
    assert "accept-host-key" in operations and "write-pool-marker" in operations

    third = ovmtui(tmp_path, "host", "test", "pool1/xen01", config=config)
    assert third.returncode == 0 and third.stdout.splitlines()[-1] == "passed"


def test_the_json_of_a_libvirt_uri_in_no_estate_file(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "host", "test", "--libvirt", "test:///default", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"host", "checks"} and report["host"] == "test:///default"
    assert all(set(c) == {"name", "ok", "detail", "ms"} for c in report["checks"])
    assert {c["name"]: c["ok"] for c in report["checks"]}["libvirt info"] is True


def test_a_closed_port_exits_1_and_an_unknown_host_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        closed = ovmtui(tmp_path, "host", "test", "--ssh", f"root@127.0.0.1:{port}")
    assert closed.returncode == 1
    assert "FAIL  tcp connect" in closed.stdout and "refused" in closed.stdout
    config = tmp_path / "estate.toml"
    config.write_text(
        '[[pools]]\nname = "p"\n[[pools.hosts]]\nname = "h1"\nlibvirt = "test:///default"\n'
    )
    unknown = ovmtui(tmp_path, "host", "test", "nope", config=config)
    assert unknown.returncode == 2 and "no host 'nope'" in unknown.stderr
