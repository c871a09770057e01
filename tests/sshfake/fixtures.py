"""Pytest fixtures over :class:`SshdServer`. Import them into a conftest::

    from tests.sshfake.fixtures import fake_xen_estate, fake_xen_host, fake_xen_servers

Each is function-scoped: every test gets fresh sshd processes, keys and state, and the
teardown stops every process and deletes every file even when the test failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .sshd import FakeXenHost, HostSpec, SshdServer

ESTATE = (
    HostSpec("xen01", toolstack="xm"),  # Oracle VM 2/3 style: xend only
    HostSpec("xen02", toolstack="both"),  # Xen 4.x with xend and xl installed
    HostSpec("xen03", toolstack="xl"),  # modern Xen: xl only
)


@pytest.fixture
def fake_xen_servers() -> Iterator[Callable[..., SshdServer]]:
    """A factory: ``fake_xen_servers(hosts=..., **SshdServer.start options)``; every
    server it made is closed after the test."""
    servers: list[SshdServer] = []

    def start(*args: Any, **kwargs: Any) -> SshdServer:
        server = SshdServer.start(*args, **kwargs)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def fake_xen_host() -> Iterator[FakeXenHost]:
    """One host "xen01" with both toolstacks and six generated domains, its own sshd."""
    with SshdServer.start(["xen01"]) as server:
        yield server.hosts[0]


@pytest.fixture
def fake_xen_estate() -> Iterator[SshdServer]:
    """Three hosts, one sshd each: xen01 has only ``xm``, xen02 both, xen03 only ``xl``."""
    specs = [HostSpec(s.name, toolstack=s.toolstack) for s in ESTATE]
    with SshdServer.start(specs) as server:
        yield server
