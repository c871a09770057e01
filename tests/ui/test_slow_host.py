"""A host that accepts the connection and then never answers (a hung libvirtd, a half-dead
network): the rest of the estate shows at once, and the silent host turns unreachable when
its call times out, with a message that says so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey
from tests.ui.conftest import SIZE, fixed_demo_estate, make_app, table, wait_until


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback TCP server that accepts and then says nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


async def test_silent_host_never_delays_the_others(silent_port: int) -> None:
    good = fixed_demo_estate().pools[0].hosts[0]
    silent = HostConfig("prod", "silent01", libvirt=f"qemu+tcp://127.0.0.1:{silent_port}/system")
    estate = EstateConfig((PoolConfig("prod", (good, silent)),), "test")
    backends = [LibvirtBackend(h.key, h.address, call_timeout_s=8.0) for h in estate.hosts]
    app = make_app(estate, backends=backends)
    async with app.run_test(size=SIZE) as pilot:
        # The good host's VMs are on screen long before the silent host's call gives up.
        await wait_until(
            pilot,
            lambda: table(app).row_count == 13,
            limit_s=6,
            what="ovs01's VMs while the other host is silent",
        )
        silent_status = app.snapshot.host(HostKey("prod", "silent01"))
        assert silent_status is not None and silent_status.reachable is None
        await wait_until(
            pilot,
            lambda: app.snapshot.host(HostKey("prod", "silent01")).reachable is False,  # type: ignore[union-attr]
            limit_s=20,
            what="the silent host to time out",
        )
        status = app.snapshot.host(HostKey("prod", "silent01"))
        assert status is not None
        assert "no answer within 8 s" in (status.error or "")
        assert table(app).row_count == 13
