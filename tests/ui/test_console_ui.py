"""The console in the TUI, end to end over a real sshd: `c` on a Xen VM opens its console
(the fake dom0's `xm console`, a PTY on the host's existing connection), the guest's boot
log and shell come through the terminal widget, typed keys reach it, Ctrl+] goes back to a
dashboard that still refreshes, `C` lists the console and `x` closes it, on the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ovmtui.model import HostKey
from ovmtui.screens.console import ConsoleScreen
from ovmtui.screens.consoles import ConsolesScreen
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.services.consoles import ConsoleState
from ovmtui.widgets.terminal_view import TerminalView
from tests.sshfake.fixtures import fake_xen_servers
from tests.ui.conftest import SIZE, make_app, table, wait_until
from tests.ui.test_mixed_estate import mixed_estate, start_xen

__all__ = ["fake_xen_servers"]  # a pytest fixture


def shown(app: Any) -> str:
    """What the console's terminal shows now, line by line."""
    screen = app.screen
    assert isinstance(screen, ConsoleScreen), screen
    return "\n".join(screen.query_one(TerminalView).screen_state.display)


def status_line(app: Any) -> str:
    from textual.widgets import Static

    return str(app.screen.query_one("#console-status", Static).render())


async def test_a_xen_vms_console_from_the_dashboard_and_back(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(
        mixed_estate(xen), repository=tmp_path / "repository.sqlite", console_log_dir=tmp_path
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16, what="both hosts' VMs")
        await pilot.press("slash", *"xenweb01", "enter", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen), what="console")
        await wait_until(pilot, lambda: "heartbeat" in shown(app), what="the boot log")
        assert "xm console 3" in status_line(app)  # the domain's id, as xm wants it
        await pilot.press(*"echo hello", "enter")
        await wait_until(
            pilot,
            lambda: any(line.strip() == "hello" for line in shown(app).splitlines()),
            what="the guest's answer",
        )
        (console,) = app.consoles
        assert console.status.state is ConsoleState.ATTACHED
        # Ctrl+Q, which Textual binds to quit before any widget: the guest's key here.
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        assert app.is_running and isinstance(app.screen, ConsoleScreen)
        # Ctrl+] leaves: the dashboard again, still refreshing; the console stays open.
        generation = app.snapshot.generation
        await pilot.press("ctrl+right_square_bracket")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await wait_until(pilot, lambda: app.snapshot.generation > generation, what="a refresh")
        assert app.consoles == (console,)
        # C lists it; x closes it.
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsolesScreen))
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.consoles, what="the console closed")
        assert app.repository is not None
        (entry,) = [e for e in await app.repository.journal_entries() if e.operation == "console"]
        assert (entry.host, entry.vm, entry.ok) == ("ovs07", "xenweb01", True)
        log = console.status.log_path
        assert log is not None and log.parent == tmp_path
        assert b"hello" in log.read_bytes()
        assert str(log) in (entry.detail or "")
    # Nothing of the console is left running on the host.
    host = app.snapshot.host(HostKey("prod", "ovs07"))
    assert host is not None


async def test_the_console_key_says_why_a_vm_has_none(fake_xen_servers: Any) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        # A VM of libvirt's test driver: the host's own reason.
        await pilot.press("slash", *"web01", "enter")
        assert "test driver has no consoles" in (dashboard.console_key_refusal() or "")
        await pilot.press("c")
        assert isinstance(app.screen, DashboardScreen)
        # A Xen VM that is off.
        await pilot.press("slash", "ctrl+u", *"xenoff01", "enter")
        assert dashboard.console_key_refusal() == "no console: the VM is shutoff"


async def test_read_only_opens_the_console_view_only(fake_xen_servers: Any) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        await pilot.press("slash", *"xenweb01", "enter", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        await wait_until(pilot, lambda: "heartbeat" in shown(app), what="the boot log")
        assert "VIEW-ONLY" in status_line(app)
        await pilot.press(*"echo hello", "enter")
        await pilot.pause(0.5)
        assert "hello" not in shown(app)


async def test_two_consoles_at_once_and_a_xen_reboot_followed(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen), console_log_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        for name in ("xenweb01", "xendb01"):
            await pilot.press("slash", "ctrl+u", *name, "enter", "c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
            await wait_until(pilot, lambda: "heartbeat" in shown(app), what=f"{name}'s boot")
            await pilot.press("ctrl+right_square_bracket")
            await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        web, db = app.consoles
        assert (web.status.vm, db.status.vm) == ("xenweb01", "xendb01")
        # Rebooting xenweb01 re-creates its domain under a new id: its console ends, waits
        # for it and re-attaches to the new domain; the other console never notices.
        await pilot.press("slash", "ctrl+u", *"xenweb01", "enter", "r")
        await wait_until(
            pilot,
            lambda: web.status.attaches == 2 and web.status.state is ConsoleState.ATTACHED,
            limit_s=30,
            what="the console re-attached after the reboot",
        )
        new_id = xen.domain("xenweb01")["domid"]
        assert new_id != 3 and web.status.command == f"xm console {new_id}"
        assert db.status.state is ConsoleState.ATTACHED and db.status.attaches == 1
        # Closing one leaves the other, and the dashboard, as they were.
        web.close()
        await wait_until(pilot, lambda: app.consoles == (db,), what="one console closed")
        assert db.status.state is ConsoleState.ATTACHED
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsolesScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        assert app.screen.console is db  # type: ignore[attr-defined]


async def test_a_console_opened_again_after_closing_is_a_new_one(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen), console_log_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        await pilot.press("slash", *"xenweb01", "enter", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        first = app.screen.console  # type: ignore[attr-defined]
        await pilot.press("ctrl+right_square_bracket")
        first.close()
        await wait_until(pilot, lambda: not app.consoles, what="the first closed")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        second = app.screen.console  # type: ignore[attr-defined]
        assert second is not first and app.consoles == (second,)
        await wait_until(pilot, lambda: second.status.state is ConsoleState.ATTACHED)
        await pilot.press("enter")  # an idle guest prints nothing until a key comes
        await wait_until(pilot, lambda: "root@" in shown(app), what="the new console's shell")
