"""Every headless command read through a pipe that closes early (``| head -c 10``) exits as
git and grep do: killed by SIGPIPE (a shell says 141), and nothing on stderr."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ovmtui.store.repository import Repository


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "repository.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "ovmtui", "inventory", "--demo", "--repository", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    asyncio.run(_journal_many_actions(path, 400))  # more than a pipe holds (64 KiB)
    return path


async def _journal_many_actions(path: Path, count: int) -> None:
    async with await Repository.open(path) as repo:
        for n in range(count):
            record = await repo.journal_started(
                user="ops",
                pool="prod",
                host="ovs01",
                vm=f"web{n:03}",
                uuid=None,
                operation="start",
                command=f"start web{n:03}",
            )
            await repo.journal_finished(record, ok=True, detail=None)


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "--json"],
        ["audit", "verify"],
        ["backups"],
        ["jobs"],
        ["jobs", "--json"],
        ["drift"],
        ["inventory", "--demo", "--json"],
        ["inventory", "--demo"],
    ],
    ids=" ".join,
)
def test_a_pipe_closed_before_the_first_line_ends_the_command_quietly(
    repository: Path, command: list[str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovmtui", *command, "--repository", str(repository)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    # The reader is gone before the command writes anything: its first write fails.
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == -signal.SIGPIPE, stderr
    assert stderr == ""


def test_head_in_a_shell_sees_what_git_log_would_give(repository: Path) -> None:
    # The journal is bigger than a pipe holds: head leaves while the command still writes.
    script = (
        "set -o pipefail; "
        f"{sys.executable} -m ovmtui audit --json --repository {repository} | head -c 10 "
        "> /dev/null; echo $?"
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "141"  # 128 + SIGPIPE, as `git log | head -c 10` gives
    assert proc.stderr == ""
