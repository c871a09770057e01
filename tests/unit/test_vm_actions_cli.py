"""`ovmtui start|shutdown|reboot|pause|resume|force-off VM…`: the TUI's actions from a shell,
through the same core (checks, confirmation, journal), on real libvirt test-driver hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parent.parent / "data" / "libvirt-node-small.xml"


def estate(tmp_path: Path) -> Path:
    """Two hosts with the same VMs (each open of the node file is a private copy): every
    VM name is held twice, as after a copy of a pool."""
    path = tmp_path / "estate.toml"
    hosts = "".join(
        f'\n  [[pools.hosts]]\n  name = "{name}"\n  libvirt = "test://{NODE}"\n'
        for name in ("h1", "h2")
    )
    path.write_text(f'[[pools]]\nname = "p"\n{hosts}')
    return path


def ovmtui(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(estate(tmp_path))]
    argv += ["--repository", str(tmp_path / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


def journal(tmp_path: Path) -> list[dict[str, object]]:
    done = ovmtui(tmp_path, "audit", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_an_action_runs_checked_and_journaled_with_one_result_per_vm(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "pause", "web01", "--host", "h2", "--yes")
    assert done.returncode == 0, done.stderr
    assert "web01 (p/h2): pause done" in done.stdout
    assert "$ virsh" in done.stdout and "suspend web01" in done.stdout  # the exact command
    (record,) = journal(tmp_path)
    assert (record["vm"], record["host"], record["operation"], record["ok"]) == (
        "web01",
        "h2",
        "pause",
        True,
    )


def test_several_vms_and_json(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "force-off", "web01", "db01", "--host", "p/h1", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout[done.stdout.index("[") :])
    assert [(r["vm"], r["host"], r["ok"]) for r in results] == [
        ("web01", "h1", True),
        ("db01", "h1", True),
    ]
    assert {r["operation"] for r in journal(tmp_path)} == {"force-off"}


def test_a_name_held_twice_asks_for_the_host(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "pause", "web01", "--yes")
    assert done.returncode == 2
    assert "2 VMs are named 'web01'" in done.stderr and "--host" in done.stderr
    assert "Traceback" not in done.stderr


def test_by_uuid(tmp_path: Path) -> None:
    done = ovmtui(
        tmp_path, "pause", "11111111-1111-4111-8111-111111111111", "--host", "h1", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "web01 (p/h1): pause done" in done.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["pause", "web01", "--host", "h1"], "--yes"),  # off a terminal, not confirmed
        (["--read-only", "pause", "web01", "--host", "h1", "--yes"], "read-only"),
        (["pause", "web01", "--host", "h1", "--yes", "--read-only"], "read-only"),
        (["start", "web01", "--host", "h1", "--yes"], "does not apply"),  # it runs
        (["pause", "nosuch", "--yes"], "no VM 'nosuch'"),
        (["pause", "web01", "--host", "h9", "--yes"], "no host 'h9'"),
    ],
)
def test_refusals_do_nothing(tmp_path: Path, args: list[str], said: str) -> None:
    done = ovmtui(tmp_path, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    if (tmp_path / "r.sqlite").exists():
        assert journal(tmp_path) == []  # nothing ran, so nothing to record


def test_a_failed_action_exits_1_with_its_error(tmp_path: Path) -> None:
    # laptop01 is suspended to RAM: start wakes it (dompmwakeup), which libvirt's test
    # driver does not support: a real refusal by the host, as a real one gives its own.
    done = ovmtui(tmp_path, "start", "laptop01", "--host", "h1", "--yes", "--json")
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout[done.stdout.index("[") :])
    assert result["ok"] is False and "not supported" in result["error"]
    (record,) = journal(tmp_path)
    assert record["ok"] is False and "not supported" in str(record["detail"])
    done = ovmtui(tmp_path, "reboot", "web01", "db01", "--host", "h1", "--yes")
    assert done.returncode == 2 and "db01" in done.stderr  # paused: reboot does not apply
    assert len(journal(tmp_path)) == 1  # and web01 was not rebooted either
