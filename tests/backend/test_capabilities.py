"""Every backend declares exactly the capabilities whose Protocols it implements.

The UI dims or hides what a host cannot do from the declarations alone, so a declaration
without its implementation shows the operator an action the host then refuses, and one
missing hides what it could do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import pytest

from ovmtui.backend.base import (
    CAPABILITY_PROTOCOLS,
    Backend,
    CommandRunner,
    DiskStorage,
    EventCallback,
    withheld,
)
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.errors import ActionRefused
from ovmtui.model import Capability, HostFacts, HostKey, HostPoll, Vm, VmAction
from tests.backend import contract
from tests.backend.conftest import DEFAULT_URI
from tests.services.fakes import FakeBackend

HOST = HostKey("pool1", "h1")


def test_every_capability_has_a_runtime_checkable_protocol() -> None:
    assert set(CAPABILITY_PROTOCOLS) == set(Capability)
    for capability, protocol in CAPABILITY_PROTOCOLS.items():
        assert getattr(protocol, "_is_runtime_protocol", False), capability
        assert contract.protocol_members(protocol), f"{protocol.__name__} asks for nothing"


async def test_libvirt_test_driver() -> None:
    backend = LibvirtBackend(HOST, DEFAULT_URI)
    try:
        contract.check_capabilities(backend)
        await backend.connect()
        contract.check_capabilities(backend)
    finally:
        await backend.close()


@pytest.mark.parametrize("uri", ["qemu+ssh://root@h1/system", "xen+ssh://root@h2/"])
def test_libvirt_real_drivers(uri: str) -> None:
    """Before any connection: what the UI shows of a host that has not answered yet."""
    contract.check_capabilities(LibvirtBackend(HOST, uri))


def test_libvirt_attaches_disks_except_on_the_test_driver() -> None:
    real = LibvirtBackend(HOST, "qemu+ssh://root@h1/system")
    assert Capability.ATTACH_DISK in real.capabilities and real.hot_plug is None
    assert isinstance(real, DiskStorage)
    test = LibvirtBackend(HOST, DEFAULT_URI)
    assert Capability.ATTACH_DISK not in test.capabilities
    assert test.hot_plug == withheld(test)[Capability.ATTACH_DISK]
    assert "cannot attach" in (test.hot_plug or "")


@pytest.mark.parametrize("uri", ["qemu+ssh://root@h1/system", "xen+ssh://root@h2/"])
def test_libvirt_promises_a_console_on_real_drivers(uri: str) -> None:
    backend = LibvirtBackend(HOST, uri)
    assert Capability.CONSOLE in backend.capabilities
    assert not withheld(backend)


@pytest.mark.parametrize("uri", [DEFAULT_URI, "test+ssh://root@h1/abs/node.xml"])
async def test_libvirt_withholds_the_console_from_the_test_driver(uri: str) -> None:
    """The test driver has no openConsole: implemented here, withheld there, with why."""
    backend = LibvirtBackend(HOST, uri)
    try:
        for _ in ("before connecting", "connected"):
            assert Capability.CONSOLE not in backend.capabilities
            assert "test driver has no consoles" in withheld(backend)[Capability.CONSOLE]
            contract.check_capabilities(backend)
            if uri != DEFAULT_URI:
                break  # no daemon to connect to: the URI alone tells
            await backend.connect()
    finally:
        await backend.close()


def test_xen_over_ssh() -> None:
    backend = XenSshBackend(HostKey("xen", "xen01"), "root@xen01.example")
    contract.check_capabilities(backend)
    # Its stream-less set_event_callback and its vm.cfg-only definitions say no more.
    assert Capability.EVENTS not in backend.capabilities
    assert Capability.DEFINITION in backend.capabilities
    assert Capability.DEFINE not in backend.capabilities
    assert Capability.CONSOLE in backend.capabilities  # xm/xl console in a PTY
    assert Capability.MIGRATE in backend.capabilities  # xm/xl migrate (xen_migrate)
    assert Capability.ATTACH_DISK in backend.capabilities  # vm.cfg edits, block-attach
    assert isinstance(backend, DiskStorage) and isinstance(backend, CommandRunner)


def test_the_services_fake() -> None:
    contract.check_capabilities(FakeBackend("p", "a"))


# ------------------------------------------------------------------------ the check itself


class _Minimal:
    """A backend of lifecycle actions only."""

    host = HOST
    address = "minimal://h1"
    capabilities = frozenset(action.capability for action in VmAction)

    async def connect(self) -> None:
        return None

    async def poll(self) -> HostPoll:
        return HostPoll(HostFacts(), (), 0.0)  # a host with no VMs

    async def act(self, vm: Vm, action: VmAction) -> None:
        self.acted = (vm, action)

    def command_for(self, vm: Vm, action: VmAction) -> str:
        return f"minimal {action} {vm.name}"

    def set_event_callback(self, callback: EventCallback | None) -> None:
        """No events."""

    async def close(self) -> None:
        return None


class _StubbedConsole(_Minimal):
    capabilities = _Minimal.capabilities | {Capability.CONSOLE}

    def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> contextlib.AbstractAsyncContextManager[object]:
        raise ActionRefused("consoles are not supported yet")

    def console_command(self, vm: Vm) -> str:
        return f"console {vm.name}"


class _UndeclaredDefine(_Minimal):
    async def define(self, definition: str) -> str:
        self.defined = definition
        return "uuid"


@runtime_checkable
class _ConsoleStub(Protocol):
    def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> object: ...

    def console_command(self, vm: Vm) -> str: ...


class _InheritsTheStub(_Minimal, _ConsoleStub):
    capabilities = _Minimal.capabilities | {Capability.CONSOLE}


class _Consoles(_Minimal):
    capabilities = _Minimal.capabilities | {Capability.CONSOLE}

    @contextlib.asynccontextmanager
    async def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[object]:
        yield (vm, term_type, term_size, force)

    def console_command(self, vm: Vm) -> str:
        return f"console {vm.name}"


class _WithholdsConsoles(_Consoles):
    """Implements consoles, but its host has none to give."""

    capabilities = _Minimal.capabilities
    withheld = MappingProxyType({Capability.CONSOLE: "this host has no consoles"})


class _WithholdsWithoutSaying(_WithholdsConsoles):
    withheld = MappingProxyType({Capability.CONSOLE: " "})


class _DeclaresAndWithholds(_WithholdsConsoles):
    capabilities = _Consoles.capabilities


class _WithholdsWhatItLacks(_Minimal):
    withheld = MappingProxyType({Capability.CONSOLE: "this host has no consoles"})


def test_the_check_accepts_an_honest_backend() -> None:
    assert isinstance(_Minimal(), Backend)
    contract.check_capabilities(_Minimal())
    contract.check_capabilities(_Consoles())
    contract.check_capabilities(_WithholdsConsoles())
    assert not withheld(_Minimal())
    assert withheld(_WithholdsConsoles()) == {Capability.CONSOLE: "this host has no consoles"}


@pytest.mark.parametrize(
    ("backend", "said"),
    [
        (_StubbedConsole(), "declares console but does not implement ConsoleTransport"),
        (_InheritsTheStub(), "declares console but does not implement ConsoleTransport"),  # type: ignore[abstract]
        (_UndeclaredDefine(), "implements DefinitionSink but does not declare define"),
        (_WithholdsWithoutSaying(), "withholds console without a reason"),
        (_DeclaresAndWithholds(), "both declares and withholds console"),
        (_WithholdsWhatItLacks(), "withholds console but does not implement ConsoleTransport"),
    ],
)
def test_the_check_catches_a_dishonest_backend(backend: Backend, said: str) -> None:
    with pytest.raises(AssertionError, match=said):
        contract.check_capabilities(backend)
