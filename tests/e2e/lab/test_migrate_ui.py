"""Migration as an operator does it on the lab: `m` in the TUI (the plan, the confirmation,
progress, the VM on its new host), `ovmtui migrate` back from the shell, and `ovmtui
evacuate` of a host and back. Every test leaves the guests where the lab put them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable

from ovmtui.app import OvmApp
from ovmtui.model import MigrationProgress
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.migrate import MigrateScreen
from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import INTERVAL_S, SIZE, focus_vm, loaded
from tests.ui.conftest import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

BINARY = Path(sys.executable).with_name("ovmtui")
LIMIT_S = 90.0


def ovmtui(lab: Lab, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Not the lab's own repository: `make lab-demo` uses that one.
    argv = [str(BINARY), "--config", str(lab.estate_path)]
    argv += ["--repository", str(tmp_path / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False
    )


def where(lab: Lab, tmp_path: Path) -> dict[str, str]:
    done = ovmtui(lab, tmp_path, "inventory", "--json")
    assert done.returncode == 0, done.stderr
    return {vm["name"]: vm["host"] for vm in json.loads(done.stdout)["vms"]}


def put_back(lab: Lab, tmp_path: Path) -> None:
    """Each guest back on the host the lab started it on."""
    for vm, home in lab.guests.items():
        if where(lab, tmp_path).get(vm) != home:
            done = ovmtui(lab, tmp_path, "migrate", vm, home, "--yes")
            assert done.returncode == 0, done.stdout + done.stderr


async def test_migrate_from_the_tui_then_back_from_the_shell(lab: Lab, tmp_path: Path) -> None:
    readings: list[MigrationProgress] = []
    app = OvmApp(lab.estate, interval_s=INTERVAL_S)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, app)
            await focus_vm(pilot, app, "vm1")
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
            screen = app.screen
            assert isinstance(screen, MigrateScreen)
            await wait_until(pilot, lambda: screen.plan is not None, LIMIT_S, "the plan")
            rows = screen.query_one(DataTable)
            assert rows.get_row_at(0)[:2] == ["h2", "GO"], screen.plan
            real = screen._progress
            screen._progress = lambda r: (readings.append(r), real(r))[1]  # type: ignore[method-assign]
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await wait_until(pilot, lambda: screen.outcome is not None, LIMIT_S, "the move")
            assert screen.outcome is not None and screen.outcome.ok, screen.outcome
            # On its new host in the dashboard's own snapshot (the move waits for it).
            placed = app.snapshot.find_vm(screen.placed.uuid)
            assert placed is not None and placed.host == "h2"
            assert readings, "no progress was reported"
        done = ovmtui(lab, tmp_path, "migrate", "vm1", "h1", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "vm1: moved: on h1 after" in done.stdout
        assert where(lab, tmp_path)["vm1"] == "h1"
        audit = json.loads(ovmtui(lab, tmp_path, "audit", "--json").stdout)
        assert [(r["operation"], r["ok"]) for r in audit] == [("migrate", True)]
    finally:
        put_back(lab, tmp_path)


def test_evacuate_a_host_and_back(lab: Lab, tmp_path: Path) -> None:
    try:
        plan = json.loads(ovmtui(lab, tmp_path, "evacuate", "h1", "--dry-run", "--json").stdout)
        assert plan["complete"] is True
        assert {m["vm"]: m["target"] for m in plan["moves"]} == {"vm1": "h2", "vm2": "h2"}
        done = ovmtui(lab, tmp_path, "evacuate", "h1", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(where(lab, tmp_path).values()) == {"h2"}
        done = ovmtui(lab, tmp_path, "evacuate", "h2", "--yes", "--parallel", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(where(lab, tmp_path).values()) == {"h1"}
    finally:
        put_back(lab, tmp_path)
    assert where(lab, tmp_path) == lab.guests


def test_a_target_without_the_memory_is_refused_before_anything_starts(
    lab: Lab, tmp_path: Path
) -> None:
    """The target is given less memory than the guest needs the way an operator can: the
    overhead a target must keep free is set to all it has (`migration_overhead_mib`)."""
    inventory = json.loads(ovmtui(lab, tmp_path, "inventory", "--json").stdout)
    free = next(h["free_memory_mib"] for h in inventory["hosts"] if h["name"] == "h2")
    assert free, inventory["hosts"]
    estate = tmp_path / "estate.toml"
    estate.write_text(f"migration_overhead_mib = {free}\n" + lab.estate_path.read_text())
    argv = [str(BINARY), "--config", str(estate), "--repository", str(tmp_path / "r.sqlite")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=300, check=False
        )

    plan = json.loads(run("migrate", "vm1", "--dry-run", "--json").stdout)
    (h2,) = plan["targets"]
    (memory,) = [c for c in h2["checks"] if c["name"] == "memory"]
    assert not h2["go"] and memory["ok"] is False and "short" in memory["detail"]
    done = run("migrate", "vm1", "h2", "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no go for vm1 (memory)" in done.stderr
    assert where(lab, tmp_path)["vm1"] == "h1"
    audit = json.loads(ovmtui(lab, tmp_path, "audit", "--json").stdout)
    assert [r for r in audit if r["operation"] == "migrate"] == []
