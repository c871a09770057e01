"""Test connection (`T` on a host; the add-host form opens it before saving): every check
listed as it completes, with its result, time and detail.

An unknown host key shows its fingerprint and `a` offers to accept it: a confirmation names
the key and the file it goes into, and only a yes adds it (then the test runs again). A
changed key is never offered; its check says how to fix it. `r` tests again; `escape`
closes, dismissing with the report (None when closed before the test ended).
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

from ovmtui.config import HostConfig, PoolConfig
from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.connection_test import Check, ConnectionReport, KeyOffer
from ovmtui.terminal import ascii_only, to_ascii

_WORD = {True: "ok", False: "FAIL", None: "skip"}
_CLASS = {True: "-ok", False: "-failed", None: "-skipped"}


class ConnectionTestScreen(ModalScreen[ConnectionReport | None]):
    """The checks of one host (``host`` as the estate file has it, or as a form will save
    it; ``pool``: the pool it is or will be in, whose storage is checked)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept_key", "Accept host key", id="conntest-accept-key"),
        Binding("r", "again", "Test again", id="conntest-again"),
        Binding("escape", "close", "Close", id="conntest-close"),
    ]
    DEFAULT_CSS = """
    ConnectionTestScreen { align: center middle; }
    ConnectionTestScreen > #conntest {
        width: 100%; max-width: 160; height: 100%; max-height: 40;
        border: round $primary; background: $surface; padding: 0 1;
    }
    ConnectionTestScreen #conntest-title { text-style: bold; width: 100%; }
    ConnectionTestScreen #conntest-checks { height: 1fr; }
    ConnectionTestScreen .conntest-check { width: 100%; height: auto; }
    ConnectionTestScreen .conntest-head { width: 37; }
    ConnectionTestScreen .conntest-detail { width: 1fr; }
    ConnectionTestScreen .conntest-check.-ok { color: $text-success; }
    ConnectionTestScreen .conntest-check.-failed { color: $text-error; text-style: bold; }
    ConnectionTestScreen .conntest-check.-skipped { color: $text-muted; }
    ConnectionTestScreen #conntest-status { height: auto; width: 100%; }
    ConnectionTestScreen #conntest-status.-failed { color: $text-error; }
    ConnectionTestScreen #conntest-status.-passed { color: $text-success; }
    """

    def __init__(self, context: AppContext, host: HostConfig, pool: PoolConfig | None) -> None:
        super().__init__()
        self.context = context
        self.host = host
        self.pool = pool
        self.checks: list[Check] = []
        self.report: ConnectionReport | None = None
        self.accepted: str | None = None  # the known_hosts line added, once one was

    @property
    def offer(self) -> KeyOffer | None:
        return self.report.offer if self.report is not None else None

    def compose(self) -> ComposeResult:
        where = f" (pool {self.pool.name})" if self.pool is not None else ""
        with Vertical(id="conntest"):
            yield Label(
                self._plain(f"Test connection: {self.host.name}{where}  {self.host.address}"),
                id="conntest-title",
                markup=False,
            )
            yield VerticalScroll(id="conntest-checks")
            yield Static("Testing…", id="conntest-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conntest-checks").focus()
        self._test()

    # -- the test -------------------------------------------------------------------------

    @work(exclusive=True, group="conntest")
    async def _test(self) -> None:
        self.checks = []
        self.report = None
        self.refresh_bindings()
        rows = self.query_one("#conntest-checks", VerticalScroll)
        await rows.remove_children()
        self._status("Testing…", None)
        async for check in self.context.connection_tests.run(self.host, self.pool):
            self.checks.append(check)
            await rows.mount(self._row(check))
        self.report = ConnectionReport(self.host.name, tuple(self.checks))
        self.refresh_bindings()
        self._status(self._summary(self.report), self.report.passed)

    def _row(self, check: Check) -> Horizontal:
        # The detail wraps beside the result, name and time, never under them.
        ms = f"{check.ms:.0f} ms" if check.ms is not None else ""
        head = f"{_WORD[check.ok]:<4}  {check.name:<20} {ms:>8}"
        return Horizontal(
            Static(self._plain(head), classes="conntest-head", markup=False),
            Static(self._plain(check.detail), classes="conntest-detail", markup=False),
            classes=f"conntest-check {_CLASS[check.ok]}",
        )

    def _summary(self, report: ConnectionReport) -> str:
        failed = [c.name for c in report.checks if c.ok is False]
        offer = report.offer
        if offer is not None:
            return (
                f"Unknown host key {offer.algorithm} {offer.fingerprint}: press a to accept "
                "it after checking it against the host's own"
            )
        if not failed:
            skipped = sum(1 for c in report.checks if c.ok is None)
            return "Passed" + (f" ({skipped} checks did not apply)" if skipped else "")
        return f"FAILED: {', '.join(failed)}"

    def _status(self, text: str, passed: bool | None) -> None:
        status = self.query_one("#conntest-status", Static)
        status.update(self._plain(text))
        status.set_class(passed is True, "-passed")
        status.set_class(passed is False, "-failed")

    def _plain(self, text: str) -> str:
        return to_ascii(text) if ascii_only(self) else text

    # -- keys -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "accept_key":
            # Shown only while an unknown key is on offer; dimmed (not hidden) read-only.
            if self.offer is None:
                return False
            return None if self.context.read_only else True
        if action == "again":
            return self.report is not None or None
        return True

    def action_accept_key(self) -> None:
        offer = self.offer
        if offer is None or self.context.read_only:
            return
        command = self.context.connection_tests.accept_command(offer)
        warning = (
            f"{offer.target} offers {offer.algorithm} {offer.fingerprint}, unknown to "
            f"{offer.known_hosts}. Accept it only if that is the host's own key (on its "
            "console: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._accept(offer)

        self.app.push_screen(
            ConfirmDialog(
                f"Accept the host key of {offer.target}?",
                [command],
                warning=warning,
                confirm_label="Accept key",
            ),
            answered,
        )

    @work(exclusive=True, group="conntest-accept")
    async def _accept(self, offer: KeyOffer) -> None:
        try:
            self.accepted = await self.context.connection_tests.accept_key(offer, self.host)
        except OvmError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
            return
        self.notify(f"Added to {offer.known_hosts}", title="Host key accepted", markup=False)
        self._test()

    def action_again(self) -> None:
        if self.report is not None:
            self._test()

    def action_close(self) -> None:
        self.workers.cancel_group(self, "conntest")
        self.workers.cancel_group(self, "conntest-accept")
        self.dismiss(self.report)
