"""The contract every backend keeps, as reusable async checks.

Each check takes a backend (or a factory for one) plus what it needs to know about the host
it talks to, and fails with an assertion naming the broken promise. A backend's own test
module runs every check against its fakes or fixtures: the libvirt backend against libvirt's
test driver, the Xen/SSH backend against its recorded-output sshd.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import shlex
import textwrap
import threading
import time
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ovmtui.backend.base import CAPABILITY_PROTOCOLS, Backend, DefinitionSource, withheld
from ovmtui.errors import HostUnreachable, OvmError, VmNotFound
from ovmtui.model import (
    Capability,
    Disk,
    HostFacts,
    HostPoll,
    Nic,
    Vm,
    VmAction,
    VmState,
)

DANGEROUS_NAME = "x; rm -rf /"

# What each action should lead to, and the action that undoes it.
_ROUND_TRIPS: dict[VmState, tuple[tuple[VmAction, frozenset[VmState]], ...]] = {
    VmState.RUNNING: (
        (VmAction.PAUSE, frozenset({VmState.PAUSED})),
        (VmAction.RESUME, frozenset({VmState.RUNNING, VmState.BLOCKED})),
    ),
    VmState.BLOCKED: (
        (VmAction.PAUSE, frozenset({VmState.PAUSED})),
        (VmAction.RESUME, frozenset({VmState.RUNNING, VmState.BLOCKED})),
    ),
    VmState.PAUSED: (
        (VmAction.RESUME, frozenset({VmState.RUNNING, VmState.BLOCKED})),
        (VmAction.PAUSE, frozenset({VmState.PAUSED})),
    ),
    VmState.SHUTOFF: (
        (VmAction.START, frozenset({VmState.RUNNING, VmState.BLOCKED})),
        (VmAction.FORCE_OFF, frozenset({VmState.SHUTOFF})),
    ),
}


def vm_named(poll: HostPoll, name: str) -> Vm:
    matches = [vm for vm in poll.vms if vm.name == name]
    assert len(matches) == 1, f"expected one VM named {name!r}, got {len(matches)}"
    return matches[0]


def _assert_frozen(obj: object) -> None:
    assert dataclasses.is_dataclass(obj), f"{type(obj).__name__} is not a dataclass"
    first = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, first, getattr(obj, first))


async def check_poll_shape(backend: Backend) -> HostPoll:
    """A poll is immutable domain data only: frozen objects, tuples, unique UUIDs."""
    assert isinstance(backend, Backend)
    assert isinstance(backend.capabilities, frozenset)
    assert all(isinstance(cap, Capability) for cap in backend.capabilities)
    check_capabilities(backend)
    before = time.time()
    poll = await backend.poll()
    check_capabilities(backend)  # connected now: what it declares may follow the host
    assert isinstance(poll, HostPoll)
    _assert_frozen(poll)
    assert before - 1 <= poll.taken_at <= time.time() + 1
    assert isinstance(poll.facts, HostFacts)
    _assert_frozen(poll.facts)
    assert isinstance(poll.facts.cpu_flags, tuple)
    assert isinstance(poll.vms, tuple)
    uuids = [vm.uuid for vm in poll.vms]
    assert len(uuids) == len(set(uuids)), "duplicate UUIDs in one poll"
    # A fixed order keeps tables and snapshots stable whatever the host's own order is.
    assert list(poll.vms) == sorted(poll.vms, key=lambda vm: (vm.name, vm.uuid))
    for vm in poll.vms:
        assert isinstance(vm, Vm)
        _assert_frozen(vm)
        assert vm.uuid and vm.name, f"VM without identity: {vm!r}"
        assert isinstance(vm.state, VmState)
        assert isinstance(vm.disks, tuple) and isinstance(vm.nics, tuple)
        assert all(isinstance(disk, Disk) for disk in vm.disks)
        assert all(isinstance(nic, Nic) for nic in vm.nics)
        for number in (vm.vcpus, vm.memory_mib, vm.max_memory_mib, vm.cpu_time_ns):
            assert number is None or (isinstance(number, int) and number >= 0)
        if vm.state is VmState.SHUTOFF:
            assert vm.domain_id is None, f"{vm.name}: a shut-off VM has no domain id"
    return poll


async def _wait_for_state(
    backend: Backend, name: str, wanted: frozenset[VmState], settle_s: float
) -> Vm:
    deadline = time.monotonic() + settle_s
    while True:
        vm = vm_named(await backend.poll(), name)
        if vm.state in wanted or time.monotonic() > deadline:
            return vm
        await asyncio.sleep(0.1)


async def check_lifecycle(backend: Backend, vm_name: str, *, settle_s: float = 5.0) -> None:
    """An action changes the state the next poll sees; the VM ends where it started."""
    vm = vm_named(await backend.poll(), vm_name)
    assert vm.state in _ROUND_TRIPS, f"{vm_name} is {vm.state}: pick a running or off VM"
    for action, wanted in _ROUND_TRIPS[vm.state]:
        assert action.capability in backend.capabilities
        assert action.applies_to(vm.state)
        await backend.act(vm, action)
        vm = await _wait_for_state(backend, vm_name, wanted, settle_s)
        assert vm.state in wanted, f"after {action}: {vm_name} is {vm.state}"


async def check_command_quoting(backend: Backend) -> None:
    """Every shown command survives a hostile VM name: the name stays one shell word."""
    vm = Vm(uuid=str(uuid_module.uuid4()), name=DANGEROUS_NAME, state=VmState.RUNNING)
    for action in VmAction:
        command = backend.command_for(vm, action)
        words = shlex.split(command)
        # The name is one word, or inside one (a vm.cfg path that contains it).
        assert any(DANGEROUS_NAME in word for word in words), f"{action}: {command!r} splits it"
        assert "rm" not in words and ";" not in words


async def check_unknown_vm(backend: Backend) -> None:
    """Acting on a VM the host does not know raises VmNotFound, not a library error."""
    ghost = Vm(uuid=str(uuid_module.uuid4()), name="ghost", state=VmState.RUNNING)
    with pytest.raises(VmNotFound):
        await backend.act(ghost, VmAction.FORCE_OFF)


async def check_definition(backend: Backend, vm_name: str) -> str:
    assert Capability.DEFINITION in backend.capabilities
    assert isinstance(backend, DefinitionSource)
    vm = vm_named(await backend.poll(), vm_name)
    text = await backend.definition(vm)
    assert isinstance(text, str) and vm.name in text
    return text


async def check_events(
    backend: Backend,
    change: Callable[[], Awaitable[None]],
    uuid: str,
    *,
    within_s: float = 5.0,
) -> None:
    """A change made behind the backend's back is reported on the loop, with its UUID."""
    assert Capability.EVENTS in backend.capabilities
    loop_thread = threading.get_ident()
    seen: asyncio.Queue[tuple[str | None, int]] = asyncio.Queue()

    def on_event(changed: str | None) -> None:
        # put_nowait is not thread-safe: a call from a library thread may never arrive,
        # so the check below also fails (by timeout) in that case.
        seen.put_nowait((changed, threading.get_ident()))

    backend.set_event_callback(on_event)
    try:
        await backend.connect()
        await change()
        async with asyncio.timeout(within_s):
            while True:
                changed, thread = await seen.get()
                # Callbacks arrive on the loop's thread, never on a library thread.
                assert thread == loop_thread, "event callback called off the loop thread"
                if changed == uuid:
                    break
    finally:
        backend.set_event_callback(None)


async def check_unreachable(
    make_backend: Callable[[], Backend], *, within_s: float = 10.0
) -> HostUnreachable:
    """An unreachable host raises HostUnreachable, promptly, in readable words."""
    backend = make_backend()
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as caught:
            await backend.poll()
        assert time.monotonic() - started < within_s
        error = caught.value
        assert type(error).__module__ == "ovmtui.errors"
        assert error.message and "\n" not in error.message
        assert error.title
        # The library's exception must not ride along as the visible cause.
        assert error.__cause__ is None and error.__suppress_context__
        with pytest.raises(HostUnreachable):  # and again: no half-open state left behind
            await backend.poll()
        return error
    finally:
        await backend.close()


async def check_close_idempotent(backend: Backend) -> None:
    """close() never raises, twice in a row, and the backend can poll again after it."""
    await backend.poll()
    await backend.close()
    await backend.close()
    await backend.poll()
    await backend.close()


async def check_errors_are_ovm_errors(backend: Backend, vm_name: str) -> None:
    """A refused action is an OvmError with the host's own words, never a library error."""
    vm = vm_named(await backend.poll(), vm_name)
    invalid = next(action for action in VmAction if not action.applies_to(vm.state))
    with pytest.raises(OvmError) as caught:
        await backend.act(vm, invalid)
    assert type(caught.value).__module__ == "ovmtui.errors"
    assert caught.value.message


def check_capabilities(backend: Backend) -> None:
    """A capability is declared exactly when its Protocol is implemented, unless the backend
    withholds it from its host (``base.withheld``), with a reason.

    Implemented means by the backend's own methods: not missing, not inherited from the
    Protocol, and not a body that does nothing or only raises ("not supported yet"), which
    would let the UI offer what the host then refuses. Withheld means implemented, not
    declared, and said why: what the UI shows dimmed instead of offering.
    """
    declared = backend.capabilities
    assert isinstance(declared, frozenset)
    kind = type(backend).__name__
    held_back = withheld(backend)
    for capability in Capability:
        protocol = CAPABILITY_PROTOCOLS[capability]
        missing = unimplemented_members(backend, protocol)
        if capability in held_back:
            reason = held_back[capability]
            assert capability not in declared, f"{kind} both declares and withholds {capability}"
            assert isinstance(reason, str) and reason.strip(), (
                f"{kind} withholds {capability} without a reason"
            )
            assert not missing, (
                f"{kind} withholds {capability} but does not implement {protocol.__name__}: "
                f"{', '.join(missing)} missing or a stub"
            )
        elif capability in declared:
            assert isinstance(backend, protocol), f"{kind} declares {capability}: not a {protocol}"
            assert not missing, (
                f"{kind} declares {capability} but does not implement {protocol.__name__}: "
                f"{', '.join(missing)} missing or a stub"
            )
        else:
            assert missing, (
                f"{kind} implements {protocol.__name__} but does not declare {capability}"
            )


def protocol_members(protocol: type) -> list[str]:
    """The methods and properties a capability Protocol asks for."""
    return [
        name
        for name, member in vars(protocol).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    ]


def unimplemented_members(backend: object, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``backend``'s class lacks or only stubs."""
    missing = []
    for name in protocol_members(protocol):
        owner = next((k for k in type(backend).__mro__ if name in vars(k)), None)
        if owner is None or getattr(owner, "_is_protocol", False):
            missing.append(name)
            continue
        member = vars(owner)[name]
        function = member.fget if isinstance(member, property) else member
        if inspect.isfunction(function) and is_stub(function):
            missing.append(name)
    return missing


def is_stub(function: Callable[..., Any]) -> bool:
    """Whether a function's body (its docstring aside) is empty, ``...``, ``pass`` or one
    ``raise``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(function))))
    definition = tree.body[0]
    assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
    body = list(definition.body)
    if body and _is_constant(body[0], str):
        body = body[1:]
    if not body:
        return True
    if len(body) > 1:
        return False
    only = body[0]
    return isinstance(only, ast.Pass | ast.Raise) or _is_constant(only, type(...))


def _is_constant(statement: ast.stmt, kind: type) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, kind)
    )
