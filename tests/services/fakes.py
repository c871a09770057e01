"""A scriptable in-memory backend for the services' own logic (ordering, backoff, deltas).

Real hosts are exercised through the libvirt test driver elsewhere; this double exists for
faults that cannot be caused on demand: a host that dies or hangs exactly mid-poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import time

from ovmtui.backend.base import EventCallback
from ovmtui.errors import ActionFailed, HostUnreachable
from ovmtui.model import Capability, HostFacts, HostKey, HostPoll, Vm, VmAction, VmState

# What it implements, and no more (the backend contract checks fakes too): every lifecycle
# action through act(), and events (a test fires the callback it was given).
CAPABILITIES = frozenset({action.capability for action in VmAction} | {Capability.EVENTS})


class FakeBackend:
    def __init__(self, pool: str, name: str, vms: list[Vm] | None = None) -> None:
        self._host = HostKey(pool, name)
        self.vms: dict[str, Vm] = {vm.uuid: vm for vm in vms or []}
        self.fail: str | None = None
        self.hang = asyncio.Event()
        self.hang.set()
        self.polls = 0
        self.acted: list[tuple[str, VmAction]] = []
        self.callback: EventCallback | None = None
        self.closed = False
        self.capabilities: frozenset[Capability] = CAPABILITIES

    @property
    def host(self) -> HostKey:
        return self._host

    @property
    def address(self) -> str:
        return f"fake://{self._host.name}"

    async def connect(self) -> None:
        return None

    async def poll(self) -> HostPoll:
        self.polls += 1
        await self.hang.wait()
        if self.fail:
            raise HostUnreachable(self.fail)
        return HostPoll(
            HostFacts(hostname=self._host.name, memory_mib=65536, cpus=8, hypervisor="Fake"),
            tuple(sorted(self.vms.values(), key=lambda vm: vm.name)),
            time.time(),
        )

    async def act(self, vm: Vm, action: VmAction) -> None:
        self.acted.append((vm.uuid, action))
        if self.fail:
            raise ActionFailed(self.fail)
        state = {
            VmAction.START: VmState.RUNNING,
            VmAction.SHUTDOWN: VmState.SHUTOFF,
            VmAction.FORCE_OFF: VmState.SHUTOFF,
            VmAction.PAUSE: VmState.PAUSED,
            VmAction.RESUME: VmState.RUNNING,
            VmAction.REBOOT: VmState.RUNNING,
        }[action]
        self.vms[vm.uuid] = dataclasses.replace(self.vms[vm.uuid], state=state)

    def command_for(self, vm: Vm, action: VmAction) -> str:
        return shlex.join(["fake", action.value, vm.name])

    def set_event_callback(self, callback: EventCallback | None) -> None:
        self.callback = callback

    async def close(self) -> None:
        self.closed = True


def vm(name: str, state: VmState = VmState.RUNNING, **kw: object) -> Vm:
    uuid = kw.pop("uuid", None) or f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}"
    return Vm(uuid=str(uuid), name=name, state=state, vcpus=2, memory_mib=1024, **kw)  # type: ignore[arg-type]
