"""The estate's keys and forms on the dashboard (N, A, e, X, G, P): Pilot tests of what each
key does to the estate file and the running estate, and pictures of every form at 80x24 and
200x50 (tests/ui/test_screen_snapshots.py says what is fixed in them)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from ovmtui.app import OvmApp
from ovmtui.config import load_estate
from ovmtui.model import HostKey, HostRole
from ovmtui.screens.estate_dialogs import (
    FormDialog,
    HostDialog,
    PoolDialog,
    PromoteDialog,
    RemoveHostDialog,
    RolesDialog,
)
from ovmtui.store.estate_file import EstateFile
from tests.ui.conftest import dashboard, fixed_demo_estate, loaded, make_app, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
# The file's path is on screen in no form, but its hosts' URIs are: fixed, as the demo's.
FIXED_DIR = Path("/tmp/ovmtui-test-estate")


def estate_text() -> str:
    """The demo estate (its node files at a fixed path), written as an operator would."""
    out = ["# the demo estate, as a file: comments stay\n"]
    for pool in fixed_demo_estate().pools:
        out.append(f'\n[[pools]]\nname = "{pool.name}"\n')
        if pool.shared_storage:
            out.append(f'shared_storage = "{pool.shared_storage}"\n')
        for host in pool.hosts:
            roles = ", ".join(f'"{r.value}"' for r in host.roles)
            out.append(
                f'\n  [[pools.hosts]]\n  name = "{host.name}"\n  libvirt = "{host.libvirt}"\n'
                f"  roles = [{roles}]\n"
            )
    return "".join(out)


@pytest.fixture
def estate_path() -> Iterator[Path]:
    shutil.rmtree(FIXED_DIR, ignore_errors=True)
    FIXED_DIR.mkdir(parents=True)
    path = FIXED_DIR / "estate.toml"
    path.write_text(estate_text())
    yield path


@pytest.fixture(autouse=True)
def fixed_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app_for(path: Path, **kw: Any) -> OvmApp:
    file = EstateFile.read(path)
    return make_app(file.estate, estate_file=file, interval_s=3600.0, **kw)


async def on_host(pilot: Pilot[Any], name: str) -> None:
    """The tree's cursor on host ``name`` (the estate's keys act on it)."""
    app: Any = pilot.app
    host = next(h for h in app.estate.hosts if h.name == name)
    assert dashboard(app).estate_tree.select_host(host.key)
    await wait_until(pilot, lambda: dashboard(app)._scope.host == name, what="the scope")


async def form(pilot: Pilot[Any], kind: type[FormDialog], *keys: str) -> FormDialog:
    await pilot.press(*keys)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), what=kind.__name__)
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, FormDialog)
    return screen


async def fill(pilot: Pilot[Any], field: str, text: str) -> None:
    box = pilot.app.screen.query_one(f"#{field}", Input)
    box.value = text
    await pilot.pause()


def error_of(screen: FormDialog) -> str:
    return str(screen.query_one("#form-error", Static).render())


def read(path: Path) -> str:
    return path.read_text()


def write(path: Path, text: str) -> None:
    path.write_text(text)


async def until_file(pilot: Pilot[Any], path: Path, check: Callable[[str], bool]) -> None:
    await wait_until(pilot, lambda: check(read(path)), what="the estate file written")


# -- Pilot tests --------------------------------------------------------------------------


async def test_n_adds_a_pool_that_shows_in_the_tree(estate_path: Path) -> None:
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        screen = await form(pilot, PoolDialog, "N")
        assert app.focused is screen.query_one("#pool-name", Input)
        await pilot.press(*"staging", "tab", *"/OVS", "enter")
        await until_file(pilot, estate_path, lambda t: 'name = "staging"' in t)
        assert read(estate_path).startswith(estate_text())  # comments and all kept
        await wait_until(pilot, lambda: "staging" in app.snapshot.pools)
        await pilot.pause()
        assert "staging  no hosts yet" in dashboard(app).estate_tree.labels()


async def test_a_adds_a_host_to_the_pool_under_the_cursor_and_polls_it(
    estate_path: Path,
) -> None:
    app = app_for(estate_path)
    uri = fixed_demo_estate().pools[1].hosts[0].libvirt
    assert uri is not None
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "dev02")
        screen = await form(pilot, HostDialog, "A")
        assert "Add a host to pool dev" in str(screen.query_one("#form-title").render())
        await fill(pilot, "host-name", "dev03")
        await fill(pilot, "host-libvirt", uri)
        screen.query_one("#role-vm", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.snapshot.host(HostKey("dev", "dev03")) is not None)
        config = load_estate(estate_path)
        assert [h.name for h in config.pools[1].hosts] == ["dev01", "dev02", "dev03"]
        assert config.pools[1].hosts[2].roles == (HostRole.VM,)
        app.session.poller.refresh()
        await wait_until(
            pilot,
            lambda: app.snapshot.host(HostKey("dev", "dev03")).reachable is True,  # type: ignore[union-attr]
            what="the new host polled",
        )


async def test_what_start_up_would_refuse_is_said_inside_the_form(estate_path: Path) -> None:
    before = read(estate_path)
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "ovs02")
        screen = await form(pilot, HostDialog, "A")
        await pilot.press("enter")  # nothing typed
        assert error_of(screen) == "A host needs a libvirt URI or an SSH target."
        await fill(pilot, "host-name", "dev01")
        await fill(pilot, "host-ssh", "root@dev01.example.com")
        await pilot.press("ctrl+s")
        assert "host 'dev01' exists already" in error_of(screen)
        await fill(pilot, "host-name", "ovs09")
        await fill(pilot, "host-ssh", "root@-oProxyCommand=x")
        await pilot.press("ctrl+s")
        assert "is not a host name" in error_of(screen)
        await fill(pilot, "host-ssh", "root@ovs09")
        screen.query_one("#role-master", Checkbox).value = True
        await pilot.press("ctrl+s")
        assert "more than one master" in error_of(screen)
        assert app.screen is screen  # still open, still editable
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, FormDialog))
    assert read(estate_path) == before
    assert not [p for p in estate_path.parent.iterdir() if p.suffix == ".bak"]


async def test_x_removes_a_host_running_vms_only_with_its_name_typed(estate_path: Path) -> None:
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "ovs03")
        screen = await form(pilot, RemoveHostDialog, "X")
        assert app.focused is screen.query_one("#remove-name", Input)
        await pilot.press(*"ovs02", "enter")
        assert error_of(screen) == "Type the host's name, ovs03, to remove it."
        await fill(pilot, "remove-name", "ovs03")
        await pilot.press("enter")
        await until_file(pilot, estate_path, lambda t: '"ovs03"' not in t)
        await wait_until(pilot, lambda: app.snapshot.host(HostKey("prod", "ovs03")) is None)
        assert "ovs03" not in " ".join(dashboard(app).estate_tree.labels())
        journal = app.session.actions.journal
        records = journal.records  # type: ignore[union-attr]
        assert any("ovmtui host remove ovs03 --force ovs03" in str(r) for r in records)


async def test_g_sets_roles_and_p_promotes_with_a_reason(estate_path: Path) -> None:
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "ovs02")
        screen = await form(pilot, RolesDialog, "G")
        assert app.focused is screen.query_one(Checkbox)
        screen.query_one("#role-utility", Checkbox).value = True
        await pilot.press("ctrl+s")
        await until_file(pilot, estate_path, lambda t: '"utility", "vm"]' in t)
        screen = await form(pilot, PromoteDialog, "P")
        assert "now ovs01" in str(screen.query_one("#form-note", Static).render())
        await pilot.press("enter")
        assert error_of(screen) == "A reason is needed: the journal keeps it."
        await pilot.press(*"ovs01 lost a disk", "enter")
        await wait_until(
            pilot,
            lambda: HostRole.MASTER in app.snapshot.host(HostKey("prod", "ovs02")).roles,  # type: ignore[union-attr]
        )
        roles = {h.name: h.roles for h in load_estate(estate_path).hosts}
        assert roles["ovs01"] == (HostRole.UTILITY, HostRole.VM)
        assert roles["ovs02"][0] is HostRole.MASTER
        records = app.session.actions.journal.records  # type: ignore[union-attr]
        assert any("reason: ovs01 lost a disk" in str(r) for r in records)
        # The master now: P on it is dimmed, and says why.
        assert dashboard(app).estate_refusal("promote_host") == (
            "ovs02 is the master of prod already"
        )


async def test_e_edits_a_host_with_its_name_fixed(estate_path: Path) -> None:
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "dev02")
        screen = await form(pilot, HostDialog, "e")
        name = screen.query_one("#host-name", Input)
        assert name.disabled and name.value == "dev02"
        assert screen.query_one("#role-utility", Checkbox).value is True
        assert app.focused is screen.query_one("#host-libvirt", Input)
        await fill(pilot, "host-libvirt", "test:///default")
        await pilot.press("enter")
        await until_file(pilot, estate_path, lambda t: 'libvirt = "test:///default"' in t)
        await wait_until(
            pilot,
            lambda: (
                app.session.poller.backend(HostKey("dev", "dev02")).address  # type: ignore[union-attr]
                == "test:///default"
            ),
        )


async def test_escape_cancels_and_nothing_changes(estate_path: Path) -> None:
    before = read(estate_path)
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await form(pilot, PoolDialog, "N")
        await pilot.press(*"x", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, FormDialog))
    assert read(estate_path) == before


async def test_the_keys_are_dimmed_without_a_file_or_a_host_and_say_why() -> None:
    app = make_app(interval_s=3600.0)  # the demo: no file to edit
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        board = dashboard(app)
        assert board.check_action("new_pool", ()) is None
        assert "no file to edit" in (board.estate_refusal("new_pool") or "")
        await pilot.press("N")
        await pilot.pause()
        assert not isinstance(app.screen, FormDialog)


async def test_host_keys_need_a_host_and_read_only_dims_them(estate_path: Path) -> None:
    app = app_for(estate_path, read_only=True)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        assert "read-only" in (dashboard(app).estate_refusal("new_pool") or "")
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        board = dashboard(app)
        assert board.estate_refusal("edit_host") == "select a host in the tree"
        assert board.estate_refusal("add_host") == "select a pool or a host in the tree"
        assert board.estate_refusal("new_pool") is None


async def test_test_connection_runs_the_checks_of_the_host_as_typed(estate_path: Path) -> None:
    from ovmtui.screens.connection_test import ConnectionTestScreen

    uri = fixed_demo_estate().pools[1].hosts[0].libvirt
    assert uri is not None
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await on_host(pilot, "dev01")
        screen = await form(pilot, HostDialog, "A")
        await fill(pilot, "host-name", "dev09")
        await fill(pilot, "host-libvirt", uri)
        await pilot.click("#host-test")
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionTestScreen))
        test = app.screen
        assert isinstance(test, ConnectionTestScreen)
        assert test.host.name == "dev09" and test.host.libvirt == uri
        assert test.pool is not None and test.pool.name == "dev"
        await wait_until(pilot, lambda: test.report is not None, what="the checks done")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the form")
        result = str(screen.query_one("#host-test-result", Static).render())
        assert test.report is not None and test.report.passed, test.report
        assert result.startswith("Test connection passed: "), result
        assert not read(estate_path).count("dev09")  # tested, not saved


async def test_an_edit_on_disk_shows_without_a_restart(estate_path: Path) -> None:
    app = app_for(estate_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        write(estate_path, read(estate_path) + '\n[[pools]]\nname = "later"\n')
        assert await app.session.estate_edits.check_file()
        await wait_until(pilot, lambda: "later" in app.snapshot.pools)
        await pilot.pause()
        assert "later  no hosts yet" in dashboard(app).estate_tree.labels()


# -- pictures -----------------------------------------------------------------------------


def picture(*steps: Callable[[Pilot[Any]], Any]) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        app.notify = lambda *_a, **_k: None  # notices come and go on their own timers
        await loaded(pilot, app)
        for step in steps:
            await step(pilot)
        await pilot.pause(0.1)

    return run_before


def at(name: str) -> Callable[[Pilot[Any]], Any]:
    return lambda pilot: on_host(pilot, name)


def opened(kind: type[FormDialog], key: str) -> Callable[[Pilot[Any]], Any]:
    return lambda pilot: form(pilot, kind, key)


@pytest.mark.parametrize("size", SIZES)
def test_new_pool_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(opened(PoolDialog, "N"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_add_host_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(at("dev01"), opened(HostDialog, "A"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_add_host_form_with_an_error(
    snap_compare: Any, estate_path: Path, size: tuple[int, int]
) -> None:
    async def duplicate(pilot: Pilot[Any]) -> None:
        await fill(pilot, "host-name", "ovs01")
        await fill(pilot, "host-ssh", "root@ovs01.example.com")
        await pilot.press("ctrl+s")

    run = picture(at("dev01"), opened(HostDialog, "A"), duplicate)
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_edit_host_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(at("dev02"), opened(HostDialog, "e"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_roles_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(at("ovs02"), opened(RolesDialog, "G"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_remove_host_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(at("ovs03"), opened(RemoveHostDialog, "X"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_promote_form(snap_compare: Any, estate_path: Path, size: tuple[int, int]) -> None:
    run = picture(at("ovs02"), opened(PromoteDialog, "P"))
    assert snap_compare(app_for(estate_path), terminal_size=size, run_before=run)
