"""The rules of what a VM's host or state allows: one function, which the action service
refuses with and the dashboard dims its keys with."""

from __future__ import annotations

from ovmtui.model import Capability, PlacedVm, VmAction, VmState, action_refusal
from ovmtui.services.actions import ActionService, InMemoryJournal
from tests.services.fakes import CAPABILITIES, FakeBackend, vm


def service(backend: FakeBackend) -> ActionService:
    return ActionService(
        lambda key: backend if key == backend.host else None, journal=InMemoryJournal()
    )


def test_the_rules() -> None:
    off = PlacedVm("p", "h1", vm("batch01", VmState.SHUTOFF))
    assert action_refusal(off, VmAction.START, CAPABILITIES) is None
    assert action_refusal(off, VmAction.PAUSE, CAPABILITIES) == "cannot pause a VM that is shutoff"
    no_start = CAPABILITIES - {Capability.START}
    assert action_refusal(off, VmAction.START, no_start) == "h1 cannot start VMs"
    assert action_refusal(off, VmAction.START, CAPABILITIES, reachable=False) == (
        "h1 does not answer"
    )
    assert action_refusal(off, VmAction.START, CAPABILITIES, reachable=None) is None


async def test_the_service_refuses_what_the_state_rules_out_and_never_asks_the_host() -> None:
    backend = FakeBackend("p", "a", [vm("web01", VmState.RUNNING)])
    actions = service(backend)
    placed = PlacedVm("p", "a", next(iter(backend.vms.values())))
    result = await actions.run(placed, VmAction.START)
    assert not result.ok
    assert result.error == "cannot start a VM that is running"
    assert backend.acted == []
    # Refused after the "started" record, so the refusal is on the record too.
    assert actions.journal is not None
    records = actions.journal.records  # type: ignore[attr-defined]
    assert records[-1] == ("finished", 1, False, "cannot start a VM that is running")
    assert (await actions.run(placed, VmAction.PAUSE)).ok
