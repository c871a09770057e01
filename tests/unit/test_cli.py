from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ovmtui.cli import main

VALID_STATES = {
    "running",
    "blocked",
    "paused",
    "shutting-down",
    "shutoff",
    "crashed",
    "dying",
    "suspended",
    "unknown",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args], capture_output=True, text=True, timeout=60
    )


def test_bad_config_exits_2_before_any_screen(tmp_path: Path) -> None:
    bad = tmp_path / "estate.toml"
    bad.write_text("[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\n")
    proc = run_cli("--config", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:4: pool 'a': host 'h1': no connection" in proc.stderr
    assert proc.stdout == ""  # nothing drawn


def test_missing_default_config_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["inventory"]) == 2


def test_inventory_demo_json_shape() -> None:
    proc = run_cli("inventory", "--demo", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"hosts", "vms"}
    assert len(data["hosts"]) >= 5
    assert len(data["vms"]) >= 60
    for host in data["hosts"]:
        assert set(host) == {
            "pool",
            "name",
            "reachable",
            "error",
            "hypervisor",
            "memory_mib",
            "free_memory_mib",
            "cpus",
            "warnings",
        }
        assert host["reachable"] is True and host["error"] is None
    for vm in data["vms"]:
        assert set(vm) == {"pool", "host", "name", "uuid", "state", "vcpus", "memory_mib"}
        assert vm["state"] in VALID_STATES
    # Every state the test driver can hold; "dying" and "unknown" it cannot.
    assert {vm["state"] for vm in data["vms"]} == VALID_STATES - {"dying", "unknown"}
    assert len({vm["uuid"] for vm in data["vms"]}) == len(data["vms"])


def test_inventory_with_unreachable_host_prints_rest_and_exits_1(tmp_path: Path) -> None:
    from ovmtui.demo import DEMO_HOSTS

    estate = tmp_path / "estate.toml"
    estate.write_text(
        "[[pools]]\nname = 'p'\n"
        f"[[pools.hosts]]\nname = 'good'\nlibvirt = '{DEMO_HOSTS[0].uri}'\n"
        # Nothing listens on port 1: refused at once, on loopback only.
        "[[pools.hosts]]\nname = 'dead'\nlibvirt = 'qemu+tcp://127.0.0.1:1/system'\n"
    )
    proc = run_cli("inventory", "--config", str(estate), "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    by_name = {h["name"]: h for h in data["hosts"]}
    assert by_name["good"]["reachable"] is True
    assert by_name["dead"]["reachable"] is False
    assert by_name["dead"]["error"]
    assert by_name["dead"]["hypervisor"] is None and by_name["dead"]["memory_mib"] is None
    assert {vm["host"] for vm in data["vms"]} == {"good"}
    assert data["vms"]


def test_inventory_text_mode() -> None:
    proc = run_cli("inventory", "--demo")
    assert proc.returncode == 0, proc.stderr
    assert "prod/ovs01  up" in proc.stdout
    assert "web01" in proc.stdout


def test_inventory_into_a_closed_pipe_prints_no_traceback() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m ovmtui inventory --demo --json | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "{\n"
    assert "Traceback" not in proc.stderr


def test_options_before_the_subcommand_are_kept() -> None:
    from ovmtui.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--demo", "--repository", "/r.sqlite", "inventory"])
    after = parser.parse_args(["inventory", "--demo", "--repository", "/r.sqlite"])
    assert (before.demo, str(before.repository)) == (True, "/r.sqlite")
    assert (after.demo, str(after.repository)) == (True, "/r.sqlite")
    assert parser.parse_args(["inventory"]).demo is False


async def test_each_copy_of_the_demo_keeps_its_own_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two checkouts (or an old install and a new one) must not share the demo's
    repository: their hosts' addresses are node-file paths, which differ, and every start
    of one would report all five hosts of the other as changed."""
    from ovmtui import demo
    from ovmtui.cli import build_parser, resolve_repository
    from ovmtui.store.repository import Repository

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    args = build_parser().parse_args(["--demo"])
    real = build_parser().parse_args([])
    here = resolve_repository(args, None)
    assert here.parent == resolve_repository(real, None).parent
    assert here != resolve_repository(real, None)
    assert resolve_repository(args, None) == here  # the same copy: the same file

    repository = await Repository.open(here)
    try:
        assert await repository.import_estate(demo.demo_estate()) == []
        assert await repository.import_estate(demo.demo_estate()) == []
    finally:
        await repository.close()
    monkeypatch.setattr(demo, "_DIR", tmp_path / "another-checkout" / "ovmtui" / "demo")
    other = resolve_repository(args, None)
    assert other != here and other.parent == here.parent
    repository = await Repository.open(other)
    try:
        assert await repository.import_estate(demo.demo_estate()) == []
    finally:
        await repository.close()


def test_the_tui_shortens_the_gil_switch_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Worker threads parse while the event loop waits for the GIL: the TUI asks Python to
    # hand it over sooner than the default 5 ms (headless commands keep the default).
    from ovmtui.app import UI_SWITCH_INTERVAL_S, OvmApp

    seen: list[float] = []
    monkeypatch.setattr(OvmApp, "run", lambda self, *a, **k: seen.append(sys.getswitchinterval()))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    before = sys.getswitchinterval()
    try:
        assert main(["--demo"]) == 0
    finally:
        sys.setswitchinterval(before)
    assert seen == [pytest.approx(UI_SWITCH_INTERVAL_S)]


def test_max_waiting_reaches_the_poller_from_the_file_and_the_command_line(
    tmp_path: Path,
) -> None:
    from ovmtui.backend.pacing import WAIT_SLOTS
    from ovmtui.cli import build_parser, resolve_estate
    from ovmtui.services.session import EstateSession

    config = tmp_path / "estate.toml"
    config.write_text(
        'max_waiting = 150\n[[pools]]\nname = "p"\n[[pools.hosts]]\nname = "h"\n'
        'libvirt = "test:///default"\n'
    )

    def slots(argv: list[str]) -> int:
        estate = resolve_estate(build_parser().parse_args(argv))
        return EstateSession(estate, backends=[]).poller.pacing.wait_slots

    assert slots(["--demo"]) == WAIT_SLOTS
    assert slots(["--config", str(config)]) == 150
    assert slots(["--config", str(config), "--max-waiting", "8"]) == 8
    assert slots(["--config", str(config), "inventory", "--max-waiting", "9"]) == 9
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-waiting", "0"])
