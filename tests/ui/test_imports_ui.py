"""The imports screen (`I`) and its dialog: a new import from a URL runs on a fake dom0
(a real sshd, the host's real curl) from a real HTTP server, its progress listed; a bad
request is said in the dialog; a cancel is asked first and leaves nothing behind. And their
snapshots at 80x24 and 200x50, with fixed imports under way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.import_plan import plan_import
from ovmtui.import_progress import ImportProgress
from ovmtui.model import HostRole
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.imports import ImportDialog, ImportsScreen
from ovmtui.services.imports import Importing
from tests.import_servers import http_server, make_iso, url_of
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec, SshdServer
from tests.ui.conftest import make_app, wait_until

__all__ = ["fake_xen_servers"]  # a pytest fixture

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


@pytest.fixture
def estate(fake_xen_servers: Any, tmp_path: Path) -> Iterator[tuple[EstateConfig, Path, Any]]:
    """A pool of one fake dom0 (the utility host), its storage, an HTTP server."""
    server: SshdServer = fake_xen_servers([HostSpec("xen-u", domains=[], toolstack="xm")])
    host = server.hosts[0]
    storage = tmp_path / "OVS"
    storage.mkdir()
    config = HostConfig(
        "prod",
        "xen-u",
        ssh=host.ssh_target,
        identity=str(host.client_key),
        known_hosts=str(host.known_hosts),
        toolstack="xm",
        roles=(HostRole.UTILITY,),
        shared_storage=str(storage),
    )
    served = tmp_path / "served"
    served.mkdir()
    (served / "el5.iso").write_bytes(make_iso(100_000))
    (served / "big.iso").write_bytes(make_iso(4 * 1024 * 1024))
    with http_server(served) as http:
        yield EstateConfig((PoolConfig("prod", (config,), str(storage)),), "test"), storage, http


async def open_imports(pilot: Pilot[Any]) -> ImportsScreen:
    app = pilot.app
    await wait_until(pilot, lambda: app.snapshot.hosts and app.snapshot.hosts[0].reachable)
    await pilot.press("I")
    await wait_until(pilot, lambda: isinstance(app.screen, ImportsScreen))
    assert isinstance(app.screen, ImportsScreen)
    return app.screen


async def fill(pilot: Pilot[Any], url: str, name: str = "") -> ImportDialog:
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImportDialog))
    dialog = pilot.app.screen
    assert isinstance(dialog, ImportDialog)
    dialog.query_one("#import-url", Input).value = url
    dialog.query_one("#import-name", Input).value = name
    return dialog


async def test_an_import_from_the_screen_lands_and_is_told(
    estate: tuple[EstateConfig, Path, Any],
) -> None:
    config, storage, http = estate
    app = make_app(config, interval_s=3600.0)
    told: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        app.notify = lambda message, **kw: told.append(f"{kw.get('title')}: {message}")  # type: ignore[method-assign]
        screen = await open_imports(pilot)
        assert "none under way" in str(screen.query_one("#imports-title", Static).render())
        await fill(pilot, url_of(http, "el5.iso"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("Imported el5" in t for t in told), 30)
        assert (storage / "iso_pool/el5/el5.iso").stat().st_size == 100_000


async def test_a_bad_request_is_said_in_the_dialog(
    estate: tuple[EstateConfig, Path, Any],
) -> None:
    config, storage, http = estate
    app = make_app(config, interval_s=3600.0)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_imports(pilot)
        dialog = await fill(pilot, url_of(http, "el5.iso"), name="x; rm -rf")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "cannot hold '/'" in str(dialog.query_one("#import-error", Static).render()) or (
            "shell reads" in str(dialog.query_one("#import-error", Static).render())
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportsScreen))
    assert list(storage.iterdir()) == [] and http.requests == []


async def test_cancel_is_asked_then_leaves_nothing(
    estate: tuple[EstateConfig, Path, Any],
) -> None:
    config, storage, http = estate
    app = make_app(config, interval_s=3600.0)
    told: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        app.notify = lambda message, **kw: told.append(f"{kw.get('title')}: {message}")  # type: ignore[method-assign]
        screen = await open_imports(pilot)
        await fill(pilot, url_of(http, "slow/big.iso"), name="big")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: bool(screen.items) and screen.items[0].progress.done_bytes > 0,
            30,
        )
        assert screen.items[0].plan.name == "big"
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: any("cancelled" in t for t in told), 30)
        await wait_until(pilot, lambda: not screen.items)
    assert not (storage / "iso_pool/big/big.iso.partial").exists()
    assert not (storage / "iso_pool/big/big.iso").exists()


# -- snapshots ---------------------------------------------------------------------------


def fixed_imports() -> tuple[Importing, ...]:
    iso = plan_import("http://mirror.example.com/isos/OracleLinux-R5-U8-x86_64.iso", "iso", "/OVS")
    tpl = plan_import("ftp://edelivery.example.com/OVM_EL5U3_X86_PVM_10GB.tgz", "template", "/OVS")
    return (
        Importing(
            1,
            "prod",
            "ovs01",
            iso,
            ImportProgress("downloading", 40.0, 1_600_000_000, 3_900_000_000, 85_000_000),
        ),
        Importing(
            2,
            "prod",
            "ovs01",
            tpl,
            ImportProgress("unpacking", 300.0, 2_100_000_000, 2_100_000_000),
        ),
    )


@pytest.fixture
def still(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(OvmApp, "imports", property(lambda _app: fixed_imports()))


@pytest.mark.parametrize("size", SIZES)
def test_imports_screen(snap_compare: Any, size: tuple[int, int], still: None) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImportsScreen))
        await pilot.pause()

    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_import_dialog(snap_compare: Any, size: tuple[int, int], still: None) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImportsScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImportDialog))
        dialog = pilot.app.screen
        dialog.query_one("#import-url", Input).value = "gopher://old.example.com/x.iso"
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


async def test_i_on_the_storage_screen_imports_into_its_pool(
    estate: tuple[EstateConfig, Path, Any], tmp_path: Path
) -> None:
    from ovmtui.screens.storage import StorageScreen
    from ovmtui.storage_model import ResourceKind, ResourceStatus

    config, storage, http = estate
    app = make_app(config, repository=tmp_path / "r.sqlite", interval_s=3600.0)
    told: list[str] = []
    async with app.run_test(size=(160, 40)) as pilot:
        app.notify = lambda message, **kw: told.append(f"{kw.get('title')}: {message}")  # type: ignore[method-assign]
        await wait_until(pilot, lambda: app.snapshot.hosts and app.snapshot.hosts[0].reachable)
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, StorageScreen), what="S")
        screen = app.screen
        assert isinstance(screen, StorageScreen)
        await wait_until(pilot, lambda: screen.view is not None, what="the first reading")
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportDialog), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, ImportDialog)
        dialog.query_one("#import-url", Input).value = url_of(http, "el5.iso")
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("Imported el5" in t for t in told), 30)

        def pending() -> bool:
            rows = screen.view.rows if screen.view is not None else ()
            return any(
                r.kind is ResourceKind.ISO
                and r.name == "el5"
                and r.status is ResourceStatus.PENDING
                for r in rows
            )

        await wait_until(pilot, pending, 30, what="the ISO listed, pending approval")
    assert (storage / "iso_pool/el5/el5.iso").stat().st_size == 100_000
