"""Test connection against a real OpenSSH sshd (tests/sshfake) and libvirt's test driver:
every check runs and reports, an unknown key is offered and added only when accepted, a
changed key is refused, and each fault the issue names shows in its own check.

"Mounted" here: the shared storage's file system is mounted elsewhere than the host's ``/``
(``df -P``). The fake dom0s are this machine, so a directory in /dev/shm (a tmpfs) is mounted
storage, and one on the root file system is not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from ovmtui.config import HostConfig, PoolConfig
from ovmtui.errors import ActionRefused
from ovmtui.model import HostRole
from ovmtui.operations import Operations
from ovmtui.services.actions import InMemoryJournal
from ovmtui.services.connection_test import (
    Check,
    ConnectionReport,
    ConnectionTests,
    KeyOffer,
    ad_hoc_host,
)
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, SshdServer

__all__ = ["fake_xen_servers"]

POOL_ID = "5b0c56c4-1f7e-4bb4-9d43-2f0e6c1c0a11"
NAMES_XEN = [
    "resolve",
    "tcp connect",
    "ssh host key",
    "ssh login",
    "toolstack",
    "shared storage",
    "pool marker",
    "ovs-agent",
    "clock",
]


@pytest.fixture
def mounted() -> Iterator[Path]:
    """A directory on a file system of its own (not the root one): /dev/shm's tmpfs."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat("/").st_dev:
        pytest.skip("no /dev/shm file system apart from / on this machine")
    path = Path(tempfile.mkdtemp(prefix="ovmtui-shared-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def on_root_fs() -> Iterator[Path]:
    """A directory on the root file system: storage that is not mounted."""
    for base in ("/var/tmp", "/tmp", "/root"):
        if os.path.isdir(base) and os.stat(base).st_dev == os.stat("/").st_dev:
            path = Path(tempfile.mkdtemp(prefix="ovmtui-unmounted-", dir=base))
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip("no writable directory on the root file system")


@pytest.fixture
def server(fake_xen_servers: object) -> SshdServer:
    started: SshdServer = fake_xen_servers(["xen01"], domains_per_host=2)  # type: ignore[operator]
    started.hosts[0].set_service("ovs-agent", "running")
    return started


def host_of(
    fake: FakeXenHost, *, roles: tuple[HostRole, ...] = (HostRole.UTILITY,), **changes: str
) -> HostConfig:
    options: dict[str, str] = {
        "ssh": fake.ssh_target,
        "identity": str(fake.client_key),
        "known_hosts": str(fake.known_hosts),
    }
    options.update(changes)
    return HostConfig("pool1", fake.name, roles=roles, **options)  # type: ignore[arg-type]


def pool_of(host: HostConfig, storage: Path | str | None, *others: HostConfig) -> PoolConfig:
    return PoolConfig("pool1", (host, *others), str(storage) if storage else None)


def make_tests(
    journal: InMemoryJournal | None = None,
    *,
    read_only: bool = False,
    pool_id: str | None = POOL_ID,
) -> ConnectionTests:
    record = journal if journal is not None else InMemoryJournal()
    operations = Operations(
        user="tester",
        journal=lambda: record,
        refusal=lambda: "read-only mode" if read_only else None,
    )

    async def the_id(_pool: str) -> str | None:
        return pool_id

    return ConnectionTests(operations=operations, pool_id=the_id, timeout_s=5.0)


async def run(
    tests: ConnectionTests, host: HostConfig, pool: PoolConfig | None
) -> ConnectionReport:
    return await tests.report(host, pool)


def by_name(report: ConnectionReport) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


def operations_of(journal: InMemoryJournal) -> list[object]:
    return [r[6] for r in journal.records if r[0] == "started"]


async def test_a_healthy_oracle_vm_server_passes_every_check_and_its_utility_host_writes_the_marker(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    host = host_of(fake)
    journal = InMemoryJournal()
    seen: list[str] = []
    report = await make_tests(journal).report(host, pool_of(host, mounted), seen.append)  # type: ignore[arg-type]
    assert [c.name for c in report.checks] == NAMES_XEN
    assert tuple(seen) == report.checks  # each reported as it completed, in order
    assert all(c.ok for c in report.checks), report.checks
    assert report.passed
    checks = by_name(report)
    assert checks["toolstack"].detail.startswith("xm: Xen")
    assert "tmpfs" in checks["shared storage"].detail
    assert "running" in checks["ovs-agent"].detail
    assert all(c.ms is not None and c.ms >= 0 for c in report.checks)
    assert (mounted / ".ovmtui-pool").read_text() == POOL_ID + "\n"
    assert operations_of(journal) == ["write-pool-marker"]
    # A second test reads the marker and writes nothing.
    again = await make_tests(journal).report(host, pool_of(host, mounted))
    assert by_name(again)["pool marker"].ok is True
    assert operations_of(journal) == ["write-pool-marker"]


async def test_an_unknown_key_is_offered_and_added_only_when_accepted(
    server: SshdServer, tmp_path: Path
) -> None:
    fake = server.hosts[0]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "# the operator's file\nother.example ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIB7kGPK2cnlQDAJXLNJCAIGxuSMJpKgo+7wWZVxFkHRr\n"
    )
    before = known_hosts.read_bytes()
    host = host_of(fake, known_hosts=str(known_hosts))
    journal = InMemoryJournal()
    tests = make_tests(journal)
    report = await run(tests, host, None)
    checks = by_name(report)
    key = checks["ssh host key"]
    assert key.ok is False and "unknown host key" in key.detail
    offer = key.offer
    assert offer is not None and report.offer == offer
    real = asyncssh.read_public_key(str(server.keys_dir / "host_ed25519.pub"))
    assert offer.fingerprint == real.get_fingerprint("sha256")
    assert offer.known_hosts == str(known_hosts)
    assert checks["ssh login"].ok is None and "not trusted" in checks["ssh login"].detail
    assert not report.passed
    # Offered, not accepted: the file is as it was, however often the test runs.
    await run(tests, host, None)
    assert known_hosts.read_bytes() == before
    assert operations_of(journal) == []

    line = await tests.accept_key(offer, host)
    blob = real.export_public_key().split()[1].decode()
    assert line == f"[{fake.address}]:{fake.port} ssh-ed25519 {blob}"
    assert known_hosts.read_bytes() == before + line.encode() + b"\n"
    assert operations_of(journal) == ["accept-host-key"]
    finished = [r for r in journal.records if r[0] == "finished"]
    assert finished[-1][2] is True
    after = by_name(await run(tests, host, None))
    assert after["ssh host key"].ok is True and after["ssh login"].ok is True


async def test_a_key_other_than_the_one_confirmed_is_not_added(
    server: SshdServer, tmp_path: Path
) -> None:
    fake = server.hosts[0]
    known_hosts = tmp_path / "known_hosts"
    host = host_of(fake, known_hosts=str(known_hosts))
    offer = KeyOffer(fake.ssh_target, str(known_hosts), "ssh-ed25519", "SHA256:not-the-one")
    with pytest.raises(ActionRefused, match="not the SHA256:not-the-one you confirmed"):
        await make_tests().accept_key(offer, host)
    assert not known_hosts.exists()


async def test_read_only_mode_adds_no_key(server: SshdServer, tmp_path: Path) -> None:
    fake = server.hosts[0]
    known_hosts = tmp_path / "known_hosts"
    host = host_of(fake, known_hosts=str(known_hosts))
    offer = (await run(make_tests(), host, None)).offer
    assert offer is not None
    with pytest.raises(ActionRefused, match="read-only"):
        await make_tests(read_only=True).accept_key(offer, host)
    assert not known_hosts.exists()


async def test_a_changed_key_is_refused_with_the_fix_and_never_offered(
    server: SshdServer, tmp_path: Path
) -> None:
    fake = server.hosts[0]
    known_hosts = tmp_path / "known_hosts"
    shutil.copyfile(server.wrong_known_hosts, known_hosts)
    before = known_hosts.read_bytes()
    host = host_of(fake, known_hosts=str(known_hosts))
    report = await run(make_tests(), host, None)
    key = by_name(report)["ssh host key"]
    assert key.ok is False and "CHANGED" in key.detail and "ssh-keygen -R" in key.detail
    assert key.offer is None and report.offer is None
    real = asyncssh.read_public_key(str(server.keys_dir / "host_ed25519.pub"))
    forged = KeyOffer(
        fake.ssh_target, str(known_hosts), "ssh-ed25519", real.get_fingerprint("sha256")
    )
    with pytest.raises(ActionRefused, match="CHANGED"):
        await make_tests().accept_key(forged, host)
    assert known_hosts.read_bytes() == before


async def test_a_wrong_user_key_fails_the_login_and_what_needs_it_is_skipped(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    host = host_of(fake, identity=str(server.wrong_client_key))
    checks = by_name(await run(make_tests(), host, pool_of(host, mounted)))
    assert checks["ssh host key"].ok is True
    assert checks["ssh login"].ok is False and "permission denied" in checks["ssh login"].detail
    for name in ("toolstack", "shared storage", "ovs-agent", "clock"):
        assert checks[name].ok is None and "not logged in" in checks[name].detail, name
    assert not (mounted / ".ovmtui-pool").exists()


async def test_a_closed_port_fails_tcp_and_skips_the_rest_saying_why(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    with socket_bound() as port:  # bound, not listening: refused
        host = host_of(fake, ssh=f"{fake.username}@127.0.0.1:{port}")
        report = await run(make_tests(), host, pool_of(host, mounted))
    checks = by_name(report)
    assert [c.name for c in report.checks] == NAMES_XEN  # stopping at none
    assert checks["resolve"].ok is True
    assert checks["tcp connect"].ok is False and "refused" in checks["tcp connect"].detail
    assert [c.name for c in report.checks if c.ok is False] == ["tcp connect"]
    assert checks["ssh host key"].detail == "skipped: TCP did not connect"


async def test_storage_that_is_not_mounted(server: SshdServer, on_root_fs: Path) -> None:
    fake = server.hosts[0]
    host = host_of(fake)
    missing = on_root_fs / "OVS"
    checks = by_name(await run(make_tests(), host, pool_of(host, missing)))
    assert checks["shared storage"].ok is False
    assert "does not exist" in checks["shared storage"].detail
    assert checks["pool marker"].ok is None
    checks = by_name(await run(make_tests(), host, pool_of(host, on_root_fs)))
    assert checks["shared storage"].ok is False
    assert "root file system" in checks["shared storage"].detail
    assert not (on_root_fs / ".ovmtui-pool").exists()


async def test_a_marker_of_another_pool_fails_and_is_left_alone(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    marker = mounted / ".ovmtui-pool"
    marker.write_text("another-pools-id\n")
    host = host_of(fake)
    journal = InMemoryJournal()
    check = by_name(await run(make_tests(journal), host, pool_of(host, mounted)))["pool marker"]
    assert check.ok is False and "another-pools-id" in check.detail
    assert "another pool's storage" in check.detail
    assert marker.read_text() == "another-pools-id\n"
    assert operations_of(journal) == []


async def test_only_the_utility_host_writes_a_missing_marker(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    vm_host = host_of(fake, roles=(HostRole.VM,))
    utility = HostConfig("pool1", "util01", ssh="root@util01", roles=(HostRole.UTILITY,))
    check = by_name(await run(make_tests(), vm_host, pool_of(vm_host, mounted, utility)))[
        "pool marker"
    ]
    assert check.ok is False and "util01" in check.detail
    assert not (mounted / ".ovmtui-pool").exists()


async def test_read_only_mode_writes_no_marker(server: SshdServer, mounted: Path) -> None:
    fake = server.hosts[0]
    host = host_of(fake)
    check = by_name(await run(make_tests(read_only=True), host, pool_of(host, mounted)))[
        "pool marker"
    ]
    assert check.ok is False and "read-only" in check.detail
    assert not (mounted / ".ovmtui-pool").exists()


async def test_the_agent_down_fails_and_no_agent_is_skipped(
    server: SshdServer, mounted: Path
) -> None:
    fake = server.hosts[0]
    host = host_of(fake)
    fake.set_service("ovs-agent", "stopped")
    agent = by_name(await run(make_tests(), host, None))["ovs-agent"]
    assert agent.ok is False and "service ovs-agent start" in agent.detail
    fake.set_service("ovs-agent", None)
    agent = by_name(await run(make_tests(), host, None))["ovs-agent"]
    assert agent.ok is None and "not an Oracle VM server" in agent.detail


def seconds(check: Check) -> float:
    return float(check.detail.split(" s ", 1)[0])


async def test_clock_skew_is_reported(server: SshdServer) -> None:
    fake = server.hosts[0]
    host = host_of(fake)
    fake.set_clock_skew(300)
    clock = by_name(await run(make_tests(), host, None))["clock"]
    assert clock.ok is False and "ahead of this machine" in clock.detail
    assert abs(seconds(clock) - 300) < 1.0  # the round trip is not symmetric: about 300
    fake.set_clock_skew(-120)
    clock = by_name(await run(make_tests(), host, None))["clock"]
    assert clock.ok is False and "behind this machine" in clock.detail
    assert abs(seconds(clock) - 120) < 1.0
    fake.set_clock_skew(0)
    clock = by_name(await run(make_tests(), host, None))["clock"]
    assert clock.ok is True


async def test_libvirt_test_driver_passes_the_libvirt_checks() -> None:
    report = await run(make_tests(), ad_hoc_host(libvirt="test:///default"), None)
    checks = by_name(report)
    for name in ("libvirt open", "libvirt capabilities", "libvirt info", "libvirt version"):
        assert checks[name].ok is True, checks[name]
    assert "driver TEST" in checks["libvirt open"].detail
    assert "16 CPUs" in checks["libvirt info"].detail
    assert checks["resolve"].ok is None and checks["ssh login"].ok is None
    assert [c.name for c in report.checks if c.ok is False] == []
    assert report.passed


async def test_a_libvirt_uri_that_does_not_open_fails_and_skips_its_calls() -> None:
    report = await run(make_tests(), ad_hoc_host(libvirt="test:///nonexistent/file.xml"), None)
    checks = by_name(report)
    assert checks["libvirt open"].ok is False
    assert checks["libvirt info"].ok is None and "did not open" in checks["libvirt info"].detail
    assert not report.passed


class socket_bound:
    """A TCP port bound on 127.0.0.1 without listening: connections to it are refused."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
