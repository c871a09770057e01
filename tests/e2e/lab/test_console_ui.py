"""The console as an operator uses it on the lab: `c` on a real QEMU guest over qemu+ssh,
its heartbeat and shell in the terminal widget, Ctrl+] back to a dashboard that still
refreshes, a reset guest seen rebooting in the same console, a destroyed and restarted
guest re-attached by itself; and `ovmtui console vm1` in tmux.

Every test leaves its guest running with its console free, as the other lab tests expect.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from ovmtui.app import OvmApp
from ovmtui.screens.console import ConsoleScreen
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.services.consoles import ConsoleState
from ovmtui.widgets.terminal_view import TerminalView
from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import INTERVAL_S, SIZE, focus_vm, loaded
from tests.e2e.tmux import TmuxSession
from tests.ui.conftest import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

BINARY = Path(sys.executable).with_name("ovmtui")
VM, HOST = "vm2", "h1"
LIMIT_S = 60.0  # against a hang: a heartbeat comes every second


def terminal_text(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, ConsoleScreen), screen
    return "\n".join(screen.query_one(TerminalView).screen_state.display)


def heartbeats(text: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{VM} heartbeat (\d+)", text)]


async def test_the_console_of_a_lab_guest_from_the_dashboard(lab: Lab, tmp_path: Path) -> None:
    app = OvmApp(lab.estate, interval_s=INTERVAL_S, console_log_dir=tmp_path)
    try:
        await _console_from_the_dashboard(app, lab)
    finally:
        # Whatever failed, the guest runs again for the lab tests after this one.
        if lab.domstate(HOST, VM) != "running":
            lab.virsh(HOST, "start", VM)


async def _console_from_the_dashboard(app: OvmApp, lab: Lab) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, VM)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen), what="console")
        await wait_until(
            pilot, lambda: len(set(heartbeats(terminal_text(app)))) >= 2, LIMIT_S, "heartbeats"
        )
        # The busybox shell asks where the cursor is (ESC[6n): the widget answers, or the
        # shell would stall here.
        await pilot.press("enter", *"echo $((6*7))", "enter")
        await wait_until(
            pilot,
            lambda: any(line.strip() == "42" for line in terminal_text(app).splitlines()),
            LIMIT_S,
            "42",
        )
        (console,) = app.consoles
        # Back to the dashboard, which still refreshes; the console stays attached.
        generation = app.snapshot.generation
        await pilot.press("ctrl+right_square_bracket")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await wait_until(pilot, lambda: app.snapshot.generation > generation, LIMIT_S, "refresh")
        assert console.status.state is ConsoleState.ATTACHED
        # A hard reset reboots the guest under the same QEMU: the same console sees it boot.
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        lab.virsh(HOST, "reset", VM)
        await wait_until(
            pilot,
            lambda: f"ovmlab guest {VM} up" in terminal_text(app),
            LIMIT_S,
            "the guest booting again",
        )
        # Destroyed and started again: the console ends, waits, and re-attaches by itself.
        lab.virsh(HOST, "destroy", VM)
        await wait_until(
            pilot, lambda: console.status.state is ConsoleState.REATTACHING, LIMIT_S, "the wait"
        )
        # (The reason's words are the transport's, tested on the lab in test_console.py.)
        lab.virsh(HOST, "start", VM)
        await wait_until(
            pilot,
            lambda: console.status.state is ConsoleState.ATTACHED and console.status.attaches == 2,
            LIMIT_S,
            "re-attached",
        )
        await wait_until(
            pilot, lambda: "re-attached" in terminal_text(app), LIMIT_S, "the gap shown"
        )
        console.close()
        await wait_until(pilot, lambda: not app.consoles, LIMIT_S, "closed")
    log = console.status.log_path
    assert log is not None and b"42" in log.read_bytes()


def test_ovmtui_console_in_tmux_shows_the_heartbeat_and_leaves_with_0(
    lab: Lab, tmp_path: Path
) -> None:
    session = TmuxSession(
        [
            str(BINARY),
            "console",
            "vm1",
            "--config",
            str(lab.estate_path),
            # Not the lab's own repository: `make lab-demo` uses that one.
            "--repository",
            str(tmp_path / "repository.sqlite"),
            "--console-log",
            str(tmp_path),
        ],
        env={"TERM": "xterm-256color"},
    )
    try:
        session.wait_for(
            lambda s: len(set(re.findall(r"vm1 heartbeat (\d+)", s))) >= 2,
            timeout=LIMIT_S,
            what="the heartbeat counting",
        )
        assert "attached · vm1 on h1" in session.screen()
        session.send("C-]")
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status is None:
            status = session.exit_status()
            time.sleep(0.1)
        assert status == 0
    finally:
        session.kill()


async def test_ctrl_alt_del_from_the_console_palette_reboots_the_guest(
    lab: Lab, tmp_path: Path
) -> None:
    """No terminal can type Ctrl+Alt+Del into a console: the palette presses it on the
    guest's keyboard (libvirt sendKey), after asking. The lab's guest, whose init never turns
    the kernel's Ctrl+Alt+Del off, reboots at once: its banner comes again in the console."""
    from textual.command import CommandPalette

    from ovmtui.screens.dialogs import ConfirmDialog

    app = OvmApp(lab.estate, interval_s=INTERVAL_S, console_log_dir=tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, app)
            await focus_vm(pilot, app, VM)
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
            await wait_until(pilot, lambda: bool(heartbeats(terminal_text(app))), LIMIT_S)
            banners = terminal_text(app).count(f"ovmlab guest {VM} up")
            console_screen = app.screen
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*"Ctrl+Alt+Del")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), LIMIT_S)
            await pilot.press("y")
            await wait_until(pilot, lambda: app.screen is console_screen)
            await wait_until(
                pilot,
                lambda: (
                    terminal_text(app).count(f"ovmlab guest {VM} up") > banners
                    or "reboot: Restarting system" in terminal_text(app)
                ),
                LIMIT_S,
                "the guest rebooting",
            )
            # No repository here (the lab's own is make lab-demo's): the journal is in memory.
            journal = app.session.actions.journal.records  # type: ignore[union-attr]
            assert any(r[0] == "started" and r[6] == "ctrl-alt-del" for r in journal)
    finally:
        if lab.domstate(HOST, VM) != "running":
            lab.virsh(HOST, "start", VM)


async def test_a_console_taken_elsewhere_is_refused_then_taken_with_force(
    lab: Lab, tmp_path: Path
) -> None:
    """Another client holds vm2's console: ovmtui's opens, says why it cannot attach, and the
    palette offers to take it (force), never by itself; the other client's console ends."""
    from textual.command import CommandPalette

    from ovmtui.backend.libvirt import LibvirtBackend
    from ovmtui.model import HostKey
    from ovmtui.services.consoles import ConsoleState

    uri = next(h.libvirt for h in lab.estate.hosts if h.name == HOST)
    assert uri is not None
    other = LibvirtBackend(HostKey("lab", HOST), uri)
    vm = next(v for v in (await other.poll()).vms if v.name == VM)
    app = OvmApp(lab.estate, interval_s=INTERVAL_S, console_log_dir=tmp_path)
    try:
        async with (
            other.console(vm, term_type="xterm", term_size=(80, 24)) as held,
            app.run_test(size=SIZE) as pilot,
        ):
            await loaded(pilot, app)
            await focus_vm(pilot, app, VM)
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
            first = app.screen.console  # type: ignore[attr-defined]
            await wait_until(pilot, lambda: first.status.state is ConsoleState.CLOSED)
            assert first.status.attaches == 0
            assert "Active console session" in (first.status.detail or "")
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*"taking it")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: isinstance(app.screen, ConsoleScreen) and app.screen.console is not first,  # type: ignore[attr-defined]
            )
            second = app.screen.console  # type: ignore[attr-defined]
            await wait_until(pilot, lambda: second.status.state is ConsoleState.ATTACHED, LIMIT_S)
            await wait_until(pilot, lambda: len(set(heartbeats(terminal_text(app)))) >= 2, LIMIT_S)
            # The other client's console ended, saying it was taken.
            while await held.read():
                pass
            assert "another client took the console" in (held.end_reason or "")
            second.close()
            await wait_until(pilot, lambda: not app.consoles, LIMIT_S)
    finally:
        await other.close()


async def test_sysrq_help_from_the_console_palette(lab: Lab, tmp_path: Path) -> None:
    """What an operator sends a serial BREAK for, a Magic SysRq key, from the palette: the
    guest's kernel answers `h` with its help line on the console."""
    from textual.command import CommandPalette

    app = OvmApp(lab.estate, interval_s=INTERVAL_S, console_log_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await focus_vm(pilot, app, VM)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        await wait_until(pilot, lambda: bool(heartbeats(terminal_text(app))), LIMIT_S)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"SysRq h ")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "sysrq: HELP" in terminal_text(app), LIMIT_S, "the kernel's help"
        )
        journal = app.session.actions.journal.records  # type: ignore[union-attr]
        assert any(r[0] == "started" and r[6] == "sysrq-h" for r in journal)
        (console,) = app.consoles
        console.close()
        await wait_until(pilot, lambda: not app.consoles, LIMIT_S)
