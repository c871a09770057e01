"""The contract every backend keeps.

A backend manages one host. It returns domain objects from ``ovmtui.model`` only and raises
``ovmtui.errors.OvmError`` subclasses only: no libvirt or asyncssh object or exception leaves
``ovmtui/backend/``. Optional features are declared in ``capabilities`` (data, not
``isinstance`` checks) so the UI can hide or dim what a host cannot do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ovmtui.model import Capability, HostKey, HostPoll, Vm, VmAction

EventCallback = Callable[[str | None], None]
"""Called on the asyncio loop when the host reports a change.

The argument is the UUID of the VM concerned, or ``None`` for a host-level event (the
connection closed, for instance). The poller treats it as "poll this host soon".
"""


@runtime_checkable
class Backend(Protocol):
    """One host, one connection."""

    @property
    def host(self) -> HostKey: ...

    @property
    def address(self) -> str:
        """What the operator wrote to reach the host (URI or ssh target), for display."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    async def connect(self) -> None:
        """Open the connection (idempotent). Raises ``HostUnreachable``."""
        ...

    async def poll(self) -> HostPoll:
        """Everything the host says now: its facts and all its VMs.

        Connects first if needed; raises ``HostUnreachable`` (or a subclass) when the host
        cannot be asked, after which the next ``poll`` reconnects.
        """
        ...

    async def act(self, vm: Vm, action: VmAction) -> None:
        """Run a lifecycle action. Raises ``ActionFailed`` with the host's own words."""
        ...

    def command_for(self, vm: Vm, action: VmAction) -> str:
        """The equivalent shell command (``virsh …`` or ``xm …``), every argument quoted."""
        ...

    def set_event_callback(self, callback: EventCallback | None) -> None:
        """Where to report host events; backends without events never call it."""
        ...

    async def close(self) -> None:
        """Close the connection and release the worker thread; never raises."""
        ...


@runtime_checkable
class DefinitionSource(Protocol):
    """Capability ``DEFINITION``: the VM's own definition (domain XML, ``vm.cfg``)."""

    async def definition(self, vm: Vm) -> str: ...

    async def define(self, definition: str) -> str:
        """Define (register, not start) a VM from a definition ``definition()`` returned.

        Returns the defined VM's UUID. Raises ``ActionFailed`` with the host's own words
        when the host refuses it (a name or UUID already in use, a malformed definition).
        """
        ...
