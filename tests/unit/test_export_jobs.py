"""Every export of definitions is a job that `ovmtui jobs` lists with its state and result,
whether the headless command or the TUI made it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ovmtui.store.repository import Repository


def ovmtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args], capture_output=True, text=True, timeout=120
    )


def _jobs(repository: Path) -> list[dict[str, object]]:
    proc = ovmtui("jobs", "--demo", "--repository", str(repository), "--json")
    assert proc.returncode == 0, proc.stderr
    jobs: list[dict[str, object]] = json.loads(proc.stdout)
    return jobs


def test_a_headless_export_is_listed_by_ovmtui_jobs(tmp_path: Path) -> None:
    repository, target = tmp_path / "repository.sqlite", tmp_path / "definitions"
    proc = ovmtui(
        "export-definitions", "--demo", "--repository", str(repository), "--to", str(target)
    )
    assert proc.returncode == 0, proc.stderr
    archive = proc.stdout.splitlines()[0]
    [job] = _jobs(repository)
    assert (job["kind"], job["state"]) == ("export-definitions", "done")
    assert job["finished_at"] is not None and job["user"]
    assert job["detail"] == f"64 definitions in {archive}; 0 missing"
    listed = ovmtui("jobs", "--demo", "--repository", str(repository))
    assert "done" in listed.stdout and "export-definitions" in listed.stdout
    assert archive in listed.stdout


def test_a_failed_export_is_listed_as_failed_with_its_reason(tmp_path: Path) -> None:
    repository, target = tmp_path / "repository.sqlite", tmp_path / "not-a-folder"
    target.write_text("a file where the archive's folder should be\n")
    proc = ovmtui(
        "export-definitions", "--demo", "--repository", str(repository), "--to", str(target)
    )
    assert proc.returncode == 2
    [job] = _jobs(repository)
    assert (job["kind"], job["state"]) == ("export-definitions", "failed")
    assert f"export to {target} failed" in str(job["detail"])


async def test_an_export_from_the_tui_is_listed_by_ovmtui_jobs(tmp_path: Path) -> None:
    from ovmtui.app import OvmApp
    from ovmtui.demo import demo_estate

    repository = tmp_path / "repository.sqlite"
    app = OvmApp(demo_estate(), repository=repository)
    async with app.run_test() as pilot:
        while app.repository is None or not app.poller.snapshot.hosts[0].vms:
            await pilot.pause(0.05)
        result = await app.export_definitions()
    [job] = _jobs(repository)
    assert (job["kind"], job["state"]) == ("export-definitions", "done")
    assert job["detail"] == f"{result.exported} definitions in {result.path}; 0 missing"
    async with await Repository.open(repository, read_only=True) as repo:
        assert [j.kind for j in await repo.jobs()] == ["export-definitions"]
