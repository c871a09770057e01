"""A VM's serial console, full screen: the terminal and a status line under it.

Every key goes to the guest but two: Ctrl+] leaves (back to where it was opened from; the
console stays open, listed by ``C`` on the dashboard) and Ctrl+P, the app's palette, which
offers what no key can send (a literal ^] or ^P) and closing the console. The screen is
installed in the app under the console's name, so leaving and coming back keeps its
screen and scrollback; the console's output keeps feeding it meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.widgets import Static

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.format import size
from ovmtui.model import SYSRQ_DRASTIC, SYSRQ_KEYS, Capability, EstateSnapshot, HostKey
from ovmtui.services.consoles import ConsoleSession, ConsoleState, ConsoleStatus
from ovmtui.widgets.terminal_view import TerminalView

LEAVE_KEY = "ctrl+right_square_bracket"


def screen_name(console: ConsoleSession) -> str:
    return f"console-{console.key}"


def show_console(
    app: App[object],
    console: ConsoleSession,
    *,
    context: AppContext | None = None,
    on_leave: Callable[[], None] | None = None,
) -> None:
    """Bring the console's screen up: the one it has had since it opened, or a new one."""
    name = screen_name(console)
    if app.is_screen_installed(name):
        old = app.get_screen(name)
        if not isinstance(old, ConsoleScreen) or old.console is not console:
            # The screen of an earlier console of this VM, closed since: a new one for this.
            app.uninstall_screen(name)
            if all(old not in stack for stack in app._screen_stacks.values()):
                old.remove()
    if not app.is_screen_installed(name):
        screen = ConsoleScreen(console, context=context, on_leave=on_leave)
        app.install_screen(screen, name)
    if app.screen is not app.get_screen(name):
        app.push_screen(name)


class ConsoleCommands(Provider):
    """The palette on a console screen: what no key can send, and leaving or closing."""

    def _commands(self) -> list[tuple[str, str, Callable[[], None]]]:
        screen = self.screen
        if not isinstance(screen, ConsoleScreen):
            return []
        vm = screen.console.status.vm
        return [
            (
                f"Send a literal ^] to {vm}",
                "Ctrl+] itself leaves the console",
                partial(screen.send_literal, b"\x1d"),
            ),
            (
                f"Send a literal ^P to {vm}",
                "Ctrl+P itself opens this palette",
                partial(screen.send_literal, b"\x10"),
            ),
            (f"Close the console of {vm}", "end it (its session log is kept)", screen.action_close),
            *(
                (
                    f"SysRq {key} to {vm}: {meaning}",
                    "what a serial BREAK then this key does"
                    + (" (asks first)" if key in SYSRQ_DRASTIC else ""),
                    partial(screen.ask_sysrq, key),
                )
                for key, meaning in (SYSRQ_KEYS.items() if screen.can_sysrq else ())
            ),
            *(
                [
                    (
                        f"Open the console of {vm} again, taking it from another client",
                        "force: where the host allows it (libvirt), another client's console ends",
                        screen.reopen_forced,
                    )
                ]
                if screen.context is not None and screen.console.status.state is ConsoleState.CLOSED
                else []
            ),
            *(
                [
                    (
                        f"Send Ctrl+Alt+Del to {vm}",
                        "on its keyboard: most guests reboot (asks first)",
                        screen.ask_ctrl_alt_del,
                    )
                ]
                if screen.can_send_keys
                else []
            ),
            (
                "Leave the console",
                "back to where it was opened; the console stays open",
                screen.action_leave,
            ),
        ]

    async def discover(self) -> Hits:
        for text, help_text, callback in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class ConsoleScreen(Screen[None]):
    # Every key is the guest's but Ctrl+] and Ctrl+P: the app leaves Ctrl+Q to it too.
    KEYS_TO_GUEST: ClassVar[bool] = True
    COMMANDS = {ConsoleCommands}
    BINDINGS = [
        # Priority: the terminal takes every other key for the guest.
        Binding(LEAVE_KEY, "leave", "Leave", id="console-leave", priority=True),
    ]
    DEFAULT_CSS = """
    ConsoleScreen > TerminalView { height: 1fr; }
    ConsoleScreen > #console-status {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    ConsoleScreen > #console-status.-closed { background: $error 40%; }
    ConsoleScreen > #console-status.-waiting { background: $warning 40%; }
    """

    def __init__(
        self,
        console: ConsoleSession,
        *,
        context: AppContext | None = None,
        on_leave: Callable[[], None] | None = None,
    ) -> None:
        """``context``: the app's, for its estate (a host-down notice) and what is done on
        the record (Ctrl+Alt+Del); without one, the console alone."""
        super().__init__()
        self.console = console
        self.context = context
        self._estate_signal = context.estate_signal if context is not None else None
        self._leave_to = on_leave
        self._reachable: dict[HostKey, bool | None] = {}

    def compose(self) -> ComposeResult:
        yield TerminalView(view_only=self.console.status.view_only)
        yield Static(id="console-status", markup=False)

    @property
    def terminal(self) -> TerminalView:
        return self.query_one(TerminalView)

    def on_mount(self) -> None:
        self.console.watch(self.terminal.feed)
        self.console.on_status = self._status_changed
        self.console.resize(self.terminal.columns, self.terminal.rows)
        self._show(self.console.status)
        self.terminal.focus()
        # Bytes in and bytes not shown change with every read: counted once a second.
        self.set_interval(1.0, lambda: self._show(self.console.status))
        if self._estate_signal is not None:
            self._estate_signal.subscribe(self, self._estate)

    def on_unmount(self) -> None:
        self.console.watch(None)
        self.console.on_status = lambda _status: None
        if self._estate_signal is not None:
            self._estate_signal.unsubscribe(self)

    # -- the terminal's messages -----------------------------------------------------------

    def on_terminal_view_typed(self, message: TerminalView.Typed) -> None:
        message.stop()
        if self.console.status.view_only:
            self.console.answer(message.data)  # the widget sends only query answers then
        else:
            self.console.send(message.data)

    def on_terminal_view_resized(self, message: TerminalView.Resized) -> None:
        message.stop()
        self.console.resize(message.columns, message.rows)

    def reopen_forced(self) -> None:
        """A new console of the same VM, forced, in place of this closed one."""
        context, target = self.context, self.console.target
        if context is None:
            return
        leave_to = self._leave_to
        app = self.app
        if app.screen is self:
            app.pop_screen()

        def reopen() -> None:
            try:
                console = context.open_console(target, force=True)
            except OvmError as exc:
                app.notify(exc.message, title=exc.title, severity="warning", markup=False)
                return
            show_console(app, console, context=context, on_leave=leave_to)

        app.call_later(reopen)

    # -- keys on the guest's keyboard (Ctrl+Alt+Del, Magic SysRq) ---------------------------

    @property
    def can_send_keys(self) -> bool:
        """Whether the VM's host presses keys on its guests' keyboards (Ctrl+Alt+Del)."""
        return self._host_can(Capability.SEND_KEYS)

    @property
    def can_sysrq(self) -> bool:
        """Whether the VM's host sends Magic SysRq keys to its guests."""
        return self._host_can(Capability.SYSRQ)

    def ask_ctrl_alt_del(self) -> None:
        context, placed = self.context, self.console.target
        if context is None:
            return
        self._ask_then_send(
            "Ctrl+Alt+Del",
            context.ctrl_alt_del_refusal(placed),
            (
                f"Press Ctrl+Alt+Del on {placed.vm.name}'s keyboard?",
                context.ctrl_alt_del_command(placed),
                "Most guests reboot on it, some at once, without shutting down.",
            ),
            lambda: context.send_ctrl_alt_del(placed),
        )

    def ask_sysrq(self, key: str) -> None:
        context, placed = self.context, self.console.target
        if context is None:
            return
        question = (
            (
                f"SysRq {key} to {placed.vm.name}: {SYSRQ_KEYS[key]}?",
                context.sysrq_command(placed, key),
                "The guest's kernel acts at once: nothing is shut down cleanly.",
            )
            if key in SYSRQ_DRASTIC
            else None
        )
        self._ask_then_send(
            f"SysRq {key}",
            context.sysrq_refusal(placed),
            question,
            lambda: context.send_sysrq(placed, key),
        )

    def _host_can(self, capability: Capability) -> bool:
        if self.context is None:
            return False
        host = self.context.snapshot.host(self.console.target.host_key)
        return host is not None and capability in host.capabilities

    def _ask_then_send(
        self,
        what: str,
        refusal: str | None,
        question: tuple[str, str, str] | None,
        send: Callable[[], Awaitable[str | None]],
    ) -> None:
        """Say why not, or ask (``question``: title, the exact command, the warning), then
        send; without a question, send at once."""
        if refusal is not None:
            self.notify(f"No {what}: {refusal}.", severity="warning", markup=False)
            return
        if question is None:
            self._send_keys(what, send)
            return
        from ovmtui.screens.dialogs import ConfirmDialog

        title, command, warning = question
        self.app.push_screen(
            ConfirmDialog(title, [command], warning=warning, confirm_label="Send"),
            callback=partial(self._answered, what, send),
        )

    def _answered(
        self, what: str, send: Callable[[], Awaitable[str | None]], ok: bool | None
    ) -> None:
        if ok:
            self._send_keys(what, send)

    @work(group="keys")
    async def _send_keys(self, what: str, send: Callable[[], Awaitable[str | None]]) -> None:
        vm = self.console.target.vm.name
        try:
            unrecorded = await send()
        except OvmError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
            return
        said = f"{what} sent to {vm}."
        if unrecorded:
            said += f" Not in the journal: {unrecorded}"
        self.notify(said, markup=False)

    def send_literal(self, data: bytes) -> None:
        if self.console.status.view_only:
            self.notify("View-only: nothing is sent to the guest.", severity="warning")
            return
        self.console.send(data)

    # -- keys ------------------------------------------------------------------------------

    def action_leave(self) -> None:
        if self._leave_to is not None:
            self._leave_to()
            return
        if self.app.screen is self:
            self.app.pop_screen()

    def action_close(self) -> None:
        self.console.close()

    # -- status ----------------------------------------------------------------------------

    def _status_changed(self, status: ConsoleStatus) -> None:
        self._show(status)
        if status.state is ConsoleState.CLOSED:
            self.notify(
                f"Console of {status.vm} closed: {status.detail or 'closed'}",
                severity="information" if status.ok else "error",
                markup=False,
            )

    def _show(self, status: ConsoleStatus) -> None:
        line = self.query_one("#console-status", Static)
        # What matters at a glance first: a long command (a libvirt URI with its key file)
        # or log path may run off the end of the line.
        parts = [status.state.value, f"{status.vm} on {status.host}"]
        if status.view_only:
            parts.append("VIEW-ONLY: keys are not sent")
        if status.detail:
            parts.append(status.detail)
        parts.append(f"{size(status.bytes_in)} in")
        dropped = self.terminal.dropped_bytes
        if dropped:
            parts.append(f"{size(dropped)} not shown (in the log)")
        parts += ["Ctrl+] leaves", status.command]
        if status.log_path is not None:
            parts.append(f"log {status.log_path}")
        line.update(" · ".join(parts))
        line.set_class(status.state is ConsoleState.CLOSED, "-closed")
        line.set_class(status.state is ConsoleState.REATTACHING, "-waiting")

    def _estate(self, snapshot: EstateSnapshot) -> None:
        """The dashboard's alerts reach the console too: a host that stops answering."""
        for host in snapshot.hosts:
            before = self._reachable.get(host.key)
            self._reachable[host.key] = host.reachable
            if before is True and host.reachable is False:
                self.notify(
                    f"{host.name} does not answer: {host.error or 'no reply'}",
                    title="Host down",
                    severity="error",
                    markup=False,
                )
        self._show(self.console.status)
