"""VM keys the VM under the cursor (or the marked VMs) cannot use are dimmed, with the reason
in the footer's tooltip, the key panel and the palette; pressed anyway, they do nothing."""

from __future__ import annotations

import dataclasses

from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from ovmtui.app import OvmApp
from ovmtui.commands import EstateCommands
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Capability, HostKey, VmAction, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from tests.services.fakes import CAPABILITIES, FakeBackend, vm
from tests.ui.conftest import SIZE, dashboard, loaded, make_app, state_of, table, wait_until
from tests.ui.screen_text import screen_lines


async def cursor_on(pilot: Pilot[object], app: OvmApp, name: str) -> None:
    """Filter down to one VM and put the cursor on it, as an operator would."""
    await pilot.press("slash")
    dashboard(app).query_one("#filter", Input).value = name
    await pilot.press("enter")
    for _ in range(5):  # "web01" also matches "dev-web01": step down to the exact one
        cursor = table(app).cursor_vm
        if cursor is not None and cursor.vm.name == name:
            return
        await pilot.press("down")
    raise AssertionError(f"cursor never reached {name}")


def footer_key(app: OvmApp, key: str) -> FooterKey:
    found = [k for k in dashboard(app).query(FooterKey) if k.key == key]
    assert len(found) == 1, f"{len(found)} footer keys {key!r}"
    return found[0]


def dimmed(app: OvmApp, key: str) -> bool:
    # The footer is recomposed when its keys change: between the two, it has none.
    found = [k for k in dashboard(app).query(FooterKey) if k.key == key]
    return bool(found) and found[0].has_class("-disabled")


def fake_estate(*backends: FakeBackend) -> tuple[EstateConfig, list[FakeBackend]]:
    hosts = tuple(
        HostConfig(b.host.pool, b.host.name, libvirt=f"test:///{b.host.name}") for b in backends
    )
    return EstateConfig((PoolConfig("p", hosts),), "test"), list(backends)


async def test_a_shut_off_vm_dims_what_it_cannot_do_and_says_why() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await cursor_on(pilot, app, "backup-proxy01")
        assert state_of(app, "backup-proxy01") is VmState.SHUTOFF
        screen = dashboard(app)
        assert screen.check_action("vm", ("start",)) is True
        for action in ("pause", "shutdown", "reboot", "resume", "force-off"):
            assert screen.check_action("vm", (action,)) is None, action  # shown, dimmed
        await wait_until(pilot, lambda: dimmed(app, "p"), what="Pause dimmed in the footer")
        assert not dimmed(app, "s")
        assert footer_key(app, "p").tooltip == "cannot pause a VM that is shutoff"
        # The key panel shows the reason beside the key.
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: bool(app.screen.query("KeyPanel")), what="the key panel")
        await pilot.pause()
        lines = screen_lines(app)
        pause = next(line for line in lines if " Pause " in line)
        assert "cannot pause a VM" in pause, pause
        start = next(line for line in lines if " Start " in line)
        assert "cannot" not in start, start
        # A running VM: the other way round.
        await pilot.press("question_mark")
        await cursor_on(pilot, app, "web01")
        await wait_until(pilot, lambda: dimmed(app, "s") and not dimmed(app, "p"))
        assert footer_key(app, "s").tooltip == "cannot start a VM that is running"


async def test_a_dimmed_key_does_nothing() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await cursor_on(pilot, app, "backup-proxy01")
        await wait_until(pilot, lambda: dimmed(app, "K"), what="Force off dimmed")
        notes = len(app._notifications)
        await pilot.press("p", "x", "r", "u", "K")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmDialog)
        assert app.action_log == ()
        assert app.actions.journal is not None
        assert app.actions.journal.records == []  # type: ignore[attr-defined]
        # Textual's way for a dimmed key: no action, so no "cannot" notice either.
        assert len(app._notifications) == notes
        assert state_of(app, "backup-proxy01") is VmState.SHUTOFF


async def test_a_host_without_the_capability_dims_its_key() -> None:
    backend = FakeBackend("p", "nopause", [vm("web01")])
    backend.capabilities = CAPABILITIES - {Capability.PAUSE}
    estate, backends = fake_estate(backend)
    app = make_app(estate, backends=backends)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert table(app).cursor_vm.vm.name == "web01"  # type: ignore[union-attr]
        screen = dashboard(app)
        assert screen.check_action("vm", ("pause",)) is None
        assert screen.check_action("vm", ("shutdown",)) is True
        await wait_until(pilot, lambda: dimmed(app, "p"), what="Pause dimmed")
        assert footer_key(app, "p").tooltip == "nopause cannot pause VMs"
        await pilot.press("p")
        await pilot.pause(0.2)
        assert backend.acted == [] and app.action_log == ()


async def test_a_host_that_stopped_answering_dims_every_action() -> None:
    backend = FakeBackend("p", "flaky", [vm("web01")])
    estate, backends = fake_estate(backend)
    app = make_app(estate, backends=backends)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        assert dashboard(app).check_action("vm", ("pause",)) is True
        backend.fail = "connection reset"
        app.refresh_now()
        await wait_until(
            pilot,
            lambda: app.snapshot.host(HostKey("p", "flaky")).reachable is False,  # type: ignore[union-attr]
            what="the host to turn unreachable",
        )
        # Its VMs stay on screen (last known), and none of their keys can be used.
        assert table(app).cursor_vm is not None
        for action in VmAction:
            assert dashboard(app).check_action("vm", (action.value,)) is None, action
        await wait_until(pilot, lambda: dimmed(app, "p"), what="Pause dimmed")
        assert footer_key(app, "p").tooltip == "flaky does not answer"


async def test_marked_vms_enable_a_key_if_any_of_them_can() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = dashboard(app)
        await cursor_on(pilot, app, "web01")
        await pilot.press("space")  # marks web01 (running)
        await cursor_on(pilot, app, "web02")
        await pilot.press("space")  # and web02 (running)
        assert len(table(app).marked) == 2
        await pilot.press("escape")
        await cursor_on(pilot, app, "backup-proxy01")  # the cursor's VM does not count
        assert screen.check_action("vm", ("start",)) is None
        await wait_until(pilot, lambda: dimmed(app, "s"), what="Start dimmed")
        assert footer_key(app, "s").tooltip == "marked VMs: cannot start a VM that is running"
        await pilot.press("space")  # marks backup-proxy01 (shut off): now one can start
        await wait_until(pilot, lambda: not dimmed(app, "s"), what="Start enabled")
        assert screen.check_action("vm", ("start",)) is True


async def test_the_palette_lists_what_cannot_run_dimmed_with_the_reason() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = dashboard(app)
        provider = EstateCommands(screen)
        hits = [hit async for hit in provider.search("backup-proxy01")]
        by_text = {hit.text: hit for hit in hits}
        start, pause = by_text["Start backup-proxy01"], by_text["Pause backup-proxy01"]
        assert start.help == "shutoff on ovs01"
        assert pause.help == "cannot pause a VM that is shutoff"
        assert pause.score < start.score  # below what can run
        assert "dim" in str(pause.match_display.spans)  # type: ignore[union-attr]
        assert "dim" not in str(start.match_display.spans)  # type: ignore[union-attr]
        # Chosen anyway: it says why, runs nothing, and leaves the marks as they were.
        await cursor_on(pilot, app, "web01")
        await pilot.press("space", "escape")  # marks web01, clears the filter
        pause.command()
        await pilot.pause(0.2)
        assert app.action_log == ()
        note = list(app._notifications)[-1].message
        assert note == "backup-proxy01: cannot pause a VM that is shutoff."
        assert len(table(app).marked) == 1


async def test_marked_keys_follow_the_next_poll() -> None:
    backend = FakeBackend("p", "h1", [vm("web01"), vm("web02")])
    estate, backends = fake_estate(backend)
    app = make_app(estate, backends=backends)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await pilot.press("asterisk")  # marks both (running)
        await wait_until(pilot, lambda: dimmed(app, "s"), what="Start dimmed")
        # One shuts down behind ovmtui's back: the next poll makes Start usable.
        web02 = next(v for v in backend.vms.values() if v.name == "web02")
        backend.vms[web02.uuid] = dataclasses.replace(web02, state=VmState.SHUTOFF)
        app.refresh_now()
        await wait_until(pilot, lambda: not dimmed(app, "s"), what="Start enabled")
        assert dashboard(app).check_action("vm", ("start",)) is True
        await pilot.press("s")
        await wait_until(pilot, lambda: len(app.action_log) == 1, what="one start")
        assert [(r.placed.vm.name, r.ok) for r in app.action_log] == [("web02", True)]
