"""A reinstalled host restored from the repository, on the lab's real libvirtd + QEMU hosts.

The repository (the test's own) watches the lab; vm1 goes h1 -> h2 -> h1, so that the
repository last saw it on h2 too; then h2 is reinstalled (`lab.py reinstall h2`: its guests
stopped, every definition removed, libvirtd started again, empty) and `ovmtui host restore
h2 --yes --start` defines vm3 again and starts it (its serial heartbeat comes back), while
vm1, which h1 runs now, is refused. The lab is left as it was found: vm1 and vm2 on h1, vm3
on h2, all running, with their own definitions.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.lab.conftest import LAB_DIR, Lab, lab_command

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

# `python -m ovmtui` from the checkout's root: this checkout's ovmtui, not the one the
# virtualenv's `ovmtui` script was installed from (another worktree's).
ROOT = LAB_DIR.parent
LIMIT_S = 90.0  # a bound against a hang, never a measure


def ovmtui(lab: Lab, repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    where = ["--config", str(lab.estate_path), "--repository", str(repository)]
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *where, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def migrate(lab: Lab, repository: Path, vm: str, target: str) -> None:
    done = ovmtui(lab, repository, "migrate", vm, target, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.domstate(target, vm) == "running"


async def eventually(what: str, check: object) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def test_reinstalled_h2_is_restored_and_a_vm_running_on_h1_is_refused(
    lab: Lab, tmp_path: Path
) -> None:
    repository = tmp_path / "repository.sqlite"
    seen = ovmtui(lab, repository, "inventory", "--json")
    assert seen.returncode == 0, seen.stderr
    # vm1 to h2 and back: the repository has seen it on h2, and sees it on h1 now.
    migrate(lab, repository, "vm1", "h2")
    migrate(lab, repository, "vm1", "h1")
    history = ovmtui(lab, repository, "history", "vm3", "--json")
    assert history.returncode == 0, history.stderr
    assert [v["host"] for v in json.loads(history.stdout)["versions"]] == ["h2"]

    reinstalled = lab_command("reinstall", "h2", timeout=180)
    assert reinstalled.returncode == 0, reinstalled.stderr
    assert lab.virsh("h2", "list", "--all", "--name") == ""  # an empty hypervisor
    log_before = len(lab.console_log("vm3"))

    dry = ovmtui(lab, repository, "host", "restore", "h2", "--dry-run", "--start")
    assert dry.returncode == 1, dry.stdout + dry.stderr  # vm1 is refused
    lines = {line.split()[2]: line for line in dry.stdout.splitlines()[2:] if line.strip()}
    assert lines["vm3"].split()[0] == "define" and "started after" in lines["vm3"]
    assert lines["vm1"].split()[0] == "refuse" and "lab/h1 reports it now" in lines["vm1"]
    assert lab.virsh("h2", "list", "--all", "--name") == ""  # a dry run defines nothing

    done = ovmtui(lab, repository, "host", "restore", "h2", "--yes", "--start")
    assert "lab/h2 VM vm3: confirmed by the next poll" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 1  # vm1 refused
    assert lab.domstate("h2", "vm3") == "running"
    assert lab.domstate("h1", "vm1") == "running"  # untouched where it runs
    assert "vm1" not in lab.virsh("h2", "list", "--all", "--name")

    # The guest boots again: its serial heartbeat is back in its console log.
    await eventually(
        "vm3's heartbeat", lambda: "vm3 heartbeat" in lab.console_log("vm3")[log_before:]
    )
    audit = ovmtui(lab, repository, "audit", "--host", "h2", "--json")
    records = [r for r in json.loads(audit.stdout) if r["operation"] == "restore-definition"]
    assert [(r["vm"], r["ok"]) for r in records] == [("vm3", True)]
    # What the restore defined is what the repository kept: no new version.
    again = ovmtui(lab, repository, "history", "vm3", "--json")
    assert len(json.loads(again.stdout)["versions"]) == 1
    assert (LAB_DIR / "ovs" / "running_pool" / "vm3" / "System.img").exists()
