"""Messages that carry service results into the UI. Payloads are immutable."""

from __future__ import annotations

from textual.message import Message

from ovmtui.model import EstateSnapshot, VmAction
from ovmtui.services.actions import ActionResult
from ovmtui.store.drift import DriftedVm


class EstateUpdated(Message):
    """The poller published a new snapshot."""

    def __init__(self, snapshot: EstateSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class DriftChanged(Message):
    """The repository's list of VMs in drift changed."""

    def __init__(self, drifted: tuple[DriftedVm, ...]) -> None:
        super().__init__()
        self.drifted = drifted


class ActionProgressed(Message):
    """One VM of a (possibly bulk) action finished."""

    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class ActionsFinished(Message):
    """Every VM of an action finished."""

    def __init__(self, action: VmAction, results: tuple[ActionResult, ...]) -> None:
        super().__init__()
        self.action = action
        self.results = results
