"""The libvirt console where no lab runs: libvirt's test driver, which has no consoles.

The stream itself (heartbeats, typing, force, a guest shutting off, a lost daemon) is tested
on real QEMU guests: tests/e2e/lab/test_console.py.
"""

from __future__ import annotations

import shlex
import uuid

import pytest

from ovmtui.backend.base import ConsoleTransport, withheld
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.errors import ConsoleUnavailable
from ovmtui.model import Capability, HostKey, Vm, VmState
from tests.backend.conftest import DEFAULT_URI
from tests.backend.contract import DANGEROUS_NAME, vm_named

HOST = HostKey("pool1", "h1")


async def test_the_test_driver_refuses_a_console_saying_why() -> None:
    backend = LibvirtBackend(HOST, DEFAULT_URI)
    try:
        vm = vm_named(await backend.poll(), "test")  # running: only the driver is missing
        assert isinstance(backend, ConsoleTransport)
        assert Capability.CONSOLE not in backend.capabilities
        with pytest.raises(ConsoleUnavailable) as refused:
            async with backend.console(vm, term_type="xterm", term_size=(80, 24)):
                pytest.fail("the test driver gave a console")
        assert str(refused.value) == (
            "test on h1: libvirt's test driver has no consoles (no openConsole)"
        )
        assert str(refused.value).endswith(withheld(backend)[Capability.CONSOLE])
        # The refusal cost the connection nothing.
        assert vm_named(await backend.poll(), "test").name == "test"
    finally:
        await backend.close()


@pytest.mark.parametrize("name", ["web01", DANGEROUS_NAME, "-x --force"])
def test_the_console_command_is_virsh_console_quoted_without_force(name: str) -> None:
    uri = "qemu+ssh://root@h1/system?socket=/run/libvirt dir/sock"
    vm = Vm(uuid=str(uuid.uuid4()), name=name, state=VmState.RUNNING)
    command = LibvirtBackend(HOST, uri).console_command(vm)
    # --force is never part of it: taking a console from someone is asked for each time.
    assert shlex.split(command) == ["virsh", "-c", uri, "console", name]
