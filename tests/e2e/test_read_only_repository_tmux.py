"""The real binary on a repository it may read but not write: read-only, saying why; q ends it.

Tests run as root, who may write any file: setpriv drops the capabilities that let root
ignore file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as for any other operator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.tmux import TmuxSession

BINARY = Path(sys.executable).with_name("ovmtui")
SETPRIV = shutil.which("setpriv")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() == 0 and SETPRIV is None,
        reason="setpriv (util-linux) is missing: root cannot be kept from writing the file",
    ),
]


def as_operator(command: list[str]) -> list[str]:
    """The command without root's override of file permissions (unchanged for non-root)."""
    if os.geteuid() != 0:
        return command
    assert SETPRIV is not None
    drop = "-dac_override,-dac_read_search"
    return [SETPRIV, "--bounding-set", drop, "--inh-caps", "-all", *command]


def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for directory in env.values():
        Path(directory).mkdir(exist_ok=True)
    if "PYTHONPATH" in os.environ:  # the code under test, when it is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def recorded_repository(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "repo" / "r.sqlite"
    path.parent.mkdir()
    proc = subprocess.run(
        [str(BINARY), "--demo", "--repository", str(path), "inventory"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return path


def exit_status_within(session: TmuxSession, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = session.exit_status()
        if status is not None:
            return status
        time.sleep(0.1)
    raise AssertionError(f"ovmtui still running {seconds} s after q; screen:\n{session.screen()}")


def run_read_only_and_quit(path: Path, env: dict[str, str]) -> str:
    session = TmuxSession(
        as_operator([str(BINARY), "--demo", "--repository", str(path), "--interval", "1"]),
        env={**env, "TERM": "xterm-256color"},
    )
    try:
        session.wait_text("app-batch01")
        screen = session.wait_for(
            lambda s: "cannot be written" in s and "palette" in s.rstrip("\n").splitlines()[-1],
            what="the reason and the footer",
        )
        assert "READ-ONLY" in screen
        footer = screen.rstrip("\n").splitlines()[-1]
        assert "Force off" not in footer and "Pause" not in footer  # no action offered
        session.send("q")
        assert exit_status_within(session, 10) == 0
        return screen
    finally:
        session.kill()


def test_unwritable_file_runs_read_only_and_q_ends_it(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    path = recorded_repository(tmp_path, env)
    for file in path.parent.iterdir():
        file.chmod(0o444)
    before = path.read_bytes()
    run_read_only_and_quit(path, env)
    assert path.read_bytes() == before


def test_unwritable_directory_runs_read_only_and_q_ends_it(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    path = recorded_repository(tmp_path, env)
    path.parent.chmod(0o555)
    try:
        run_read_only_and_quit(path, env)
    finally:
        path.parent.chmod(0o755)


def test_unreadable_repository_refused_with_exit_2(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    path = recorded_repository(tmp_path, env)
    path.chmod(0)
    proc = subprocess.run(
        as_operator([str(BINARY), "--demo", "--repository", str(path)]),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr
    assert "Traceback" not in proc.stderr
