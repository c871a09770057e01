"""Messages that carry the session's results into the app's message loop, in order.

The app turns each into a signal that screens subscribe to (see ``ovmtui.app``). Payloads are
immutable. None of them may replace another: each snapshot's delta builds on the one before,
and every notice and result must be told.
"""

from __future__ import annotations

from textual.message import Message

from ovmtui.model import EstateSnapshot, VmAction
from ovmtui.services.actions import ActionResult
from ovmtui.services.session import Notice
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


class ActionsFinished(Message):
    """Every VM of an action finished."""

    def __init__(self, action: VmAction, results: tuple[ActionResult, ...]) -> None:
        super().__init__()
        self.action = action
        self.results = results


class NoticeGiven(Message):
    """The session has something to tell the operator."""

    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice
