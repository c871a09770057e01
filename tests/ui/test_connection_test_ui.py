"""The connection test screen: `T` on a host in the tree (or the palette) lists its checks as
they complete; an unknown host key is added only after `a` and a yes (its fingerprint shown),
a changed one is never offered; `r` tests again; escape closes with the report. Against the
libvirt test driver and the real sshd of tests/sshfake; the snapshots use scripted checks so
that every figure on screen is fixed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostRole
from ovmtui.screens.connection_test import ConnectionTestScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.connection_test import Check, ConnectionReport, KeyOffer
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import SshdServer
from tests.ui.conftest import make_app, table, wait_until

__all__ = ["fake_xen_servers"]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
FINGERPRINT = "SHA256:74rBRBogkPPumGi4E8DMMr+o5+heC+DdHs4cd/s0FDY"
OFFER = KeyOffer("root@ovs07.example.com:22", "/root/.ssh/known_hosts", "ssh-ed25519", FINGERPRINT)
SCRIPT = (
    Check("resolve", True, "ovs07.example.com: 10.1.2.7", 2.0),
    Check("tcp connect", True, "ovs07.example.com port 22 open", 1.0),
    Check(
        "ssh host key",
        False,
        f"unknown host key ssh-ed25519 {FINGERPRINT} (not in /root/.ssh/known_hosts). If that "
        "fingerprint is right, accept it with: ssh-keyscan ovs07.example.com >> "
        "/root/.ssh/known_hosts",
        14.0,
        OFFER,
    ),
    Check("ssh login", None, "skipped: the host key is not trusted"),
    Check("toolstack", None, "skipped: not logged in over SSH"),
    Check("shared storage", None, "skipped: not logged in over SSH"),
    Check("pool marker", None, "skipped: the shared storage is not mounted"),
    Check("ovs-agent", None, "skipped: not logged in over SSH"),
    Check("clock", None, "skipped: not logged in over SSH"),
)
SCRIPTED_HOST = HostConfig("prod", "ovs07", ssh="root@ovs07.example.com:22", roles=(HostRole.VM,))
SCRIPTED_POOL = PoolConfig("prod", (SCRIPTED_HOST,), "/OVS")


class ScriptedTests:
    """Connection tests that answer a fixed script (the screen's pictures), and count."""

    def __init__(self, checks: tuple[Check, ...] = SCRIPT) -> None:
        self.checks = checks
        self.runs = 0
        self.accepted: list[KeyOffer] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def run(self, host: HostConfig, pool: PoolConfig | None) -> AsyncIterator[Check]:
        self.runs += 1
        for index, check in enumerate(self.checks):
            if index == 2:
                await self.hold.wait()
            yield check

    def accept_command(self, offer: KeyOffer) -> str:
        return f"ssh-keyscan ovs07.example.com >> {offer.known_hosts}"

    async def accept_key(self, offer: KeyOffer, host: HostConfig | None = None) -> str:
        self.accepted.append(offer)
        return "ovs07.example.com ssh-ed25519 AAAA"


def scripted_app(**kw: Any) -> tuple[OvmApp, ScriptedTests]:
    app = make_app(interval_s=3600.0, **kw)
    scripted = ScriptedTests()
    app.session.connection_tests = scripted  # type: ignore[assignment]
    return app, scripted


def rows(app: Any) -> int:
    """The VM table's rows, 0 while the dashboard is not composed yet."""
    try:
        return table(app).row_count
    except NoMatches:
        return 0


async def open_scripted(pilot: Pilot[Any]) -> ConnectionTestScreen:
    app = pilot.app
    await wait_until(pilot, lambda: rows(app) > 0)
    screen = ConnectionTestScreen(app, SCRIPTED_HOST, SCRIPTED_POOL)  # type: ignore[arg-type]
    app.push_screen(screen)
    await wait_until(pilot, lambda: screen.report is not None, what="the report")
    await pilot.pause()
    return screen


async def test_t_on_a_host_tests_it_live_and_escape_closes() -> None:
    app = make_app(interval_s=3600.0)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: table(app).row_count > 0)
        await pilot.press("t", "down", "down", "T")  # the tree: prod's first host
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionTestScreen))
        screen = app.screen
        assert isinstance(screen, ConnectionTestScreen)
        assert screen.host.name == "ovs01" and screen.pool is not None
        await wait_until(pilot, lambda: screen.report is not None, what="the report")
        assert screen.report is not None and screen.report.passed
        checks = {c.name: c for c in screen.report.checks}
        assert checks["libvirt info"].ok is True and checks["libvirt open"].ok is True
        assert checks["ssh login"].ok is None  # a test:// host: no SSH, and it says so
        rows = list(screen.query(".conntest-check"))
        assert len(rows) == len(screen.report.checks)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConnectionTestScreen))


async def test_checks_show_as_they_complete_and_r_tests_again() -> None:
    app, scripted = scripted_app()
    scripted.hold.clear()
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: table(app).row_count > 0)
        screen = ConnectionTestScreen(app, SCRIPTED_HOST, SCRIPTED_POOL)
        app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.query(".conntest-check")) == 2)
        assert screen.report is None
        assert screen.check_action("again", ()) is None  # dimmed while it runs
        scripted.hold.set()
        await wait_until(pilot, lambda: screen.report is not None)
        assert len(screen.query(".conntest-check")) == len(SCRIPT)
        await pilot.press("r")
        await wait_until(pilot, lambda: scripted.runs == 2 and screen.report is not None)
        assert len(screen.query(".conntest-check")) == len(SCRIPT)  # replaced, not added


async def test_the_dialog_dismisses_with_the_report_for_whoever_opened_it() -> None:
    app, _scripted = scripted_app()
    results: list[ConnectionReport | None] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: table(app).row_count > 0)
        screen = ConnectionTestScreen(app, SCRIPTED_HOST, SCRIPTED_POOL)
        app.push_screen(screen, results.append)
        await wait_until(pilot, lambda: screen.report is not None)
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(results))
    report = results[0]
    assert report is not None and report.host == "ovs07" and not report.passed
    assert report.offer == OFFER


async def test_read_only_mode_dims_accepting_a_key() -> None:
    app, scripted = scripted_app(read_only=True)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_scripted(pilot)
        assert screen.check_action("accept_key", ()) is None
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog) and scripted.accepted == []


def xen_estate(server: SshdServer, known_hosts: Path) -> EstateConfig:
    fake = server.hosts[0]
    host = HostConfig(
        "pool1",
        fake.name,
        ssh=fake.ssh_target,
        identity=str(fake.client_key),
        known_hosts=str(known_hosts),
        roles=(HostRole.MASTER, HostRole.UTILITY, HostRole.VM),
    )
    return EstateConfig((PoolConfig("pool1", (host,)),), "test")


async def open_on_xen01(pilot: Pilot[Any]) -> ConnectionTestScreen:
    app = pilot.app
    await pilot.press("t", "down", "down", "T")
    await wait_until(pilot, lambda: isinstance(app.screen, ConnectionTestScreen))
    screen = app.screen
    assert isinstance(screen, ConnectionTestScreen)
    await wait_until(pilot, lambda: screen.report is not None, what="the report")
    return screen


async def test_an_unknown_key_is_added_only_after_a_and_yes(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    server: SshdServer = fake_xen_servers(["xen01"], domains_per_host=1)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    app = make_app(xen_estate(server, known_hosts), interval_s=3600.0)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_on_xen01(pilot)
        offer = screen.offer
        assert offer is not None and offer.fingerprint.startswith("SHA256:")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        dialog = app.screen
        assert offer.fingerprint in str(dialog.query_one("#dialog-warning").render())
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        assert known_hosts.read_text() == ""
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.accepted is not None, what="the key added")
        await wait_until(
            pilot,
            lambda: screen.report is not None and screen.report.offer is None,
            what="the test again",
        )
        assert known_hosts.read_text() == screen.accepted + "\n"
        assert {c.name: c.ok for c in screen.report.checks}["ssh login"] is True


async def test_a_changed_key_is_never_offered(fake_xen_servers: Any, tmp_path: Path) -> None:
    server: SshdServer = fake_xen_servers(["xen01"], domains_per_host=1)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(server.wrong_known_hosts.read_bytes())
    before = known_hosts.read_bytes()
    app = make_app(xen_estate(server, known_hosts), interval_s=3600.0)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_on_xen01(pilot)
        assert screen.report is not None and screen.offer is None
        key = {c.name: c for c in screen.report.checks}["ssh host key"]
        assert key.ok is False and "ssh-keygen -R" in key.detail
        assert screen.check_action("accept_key", ()) is False
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is screen and known_hosts.read_bytes() == before


# -- snapshots ---------------------------------------------------------------------------------


@pytest.fixture
def no_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)


@pytest.mark.usefixtures("no_notices")
@pytest.mark.parametrize("size", SIZES)
def test_connection_test_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _scripted = scripted_app()

    async def run(pilot: Pilot[Any]) -> None:
        await open_scripted(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.usefixtures("no_notices")
@pytest.mark.parametrize("size", SIZES)
def test_accept_key_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _scripted = scripted_app()

    async def run(pilot: Pilot[Any]) -> None:
        await open_scripted(pilot)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run)
