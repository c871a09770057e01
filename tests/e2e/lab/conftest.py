"""The two-host lab (lab/lab.py) as a session fixture, for the tests marked ``lab``.

The fixture always makes its own lab: `lab.py up` first tears down whatever ran before (a
lab started by hand with `make lab-up`, or the leftovers of a crashed run), builds what is
missing under .lab/ (minutes the first time, seconds afterwards) and starts a fresh one. At
the end of the session, pass or fail, `lab.py down` stops it and checks that no process,
network namespace or mount is left; a leftover fails the session's teardown. A lab started
by hand is therefore gone after a test run: `make lab-up` again to get it back.

The tests run whenever the machine can host the lab (root, and `ip netns add` works) and
are skipped otherwise, with the reason printed at the end of the run. OVMTUI_LAB=0 skips
them anyway (say, to keep a run short). They run last in the session, so the lab is only
up while they run.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ovmtui.config import EstateConfig, load_estate

ROOT = Path(__file__).resolve().parents[3]
LAB_SCRIPT = ROOT / "lab" / "lab.py"
LAB_DIR = ROOT / ".lab"
# A fresh machine installs ~40 packages and fetches a 26 MB kernel first.
UP_TIMEOUT_S = 600
DOWN_TIMEOUT_S = 120
# The lab's namespaces, bridge and addresses are machine-wide, whichever checkout runs it: a
# second test session (another worktree, a bench) waits here for the first to finish.
SESSION_LOCK = Path("/tmp/ovmtui-lab.session.lock")

_NOT_PROBED = "not probed"
_unavailable: str | None = _NOT_PROBED
_timings: dict[str, float] = {}


def lab_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAB_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None. Probed once per session."""
    global _unavailable
    if _unavailable == _NOT_PROBED:
        if os.environ.get("OVMTUI_LAB", "").strip() == "0":
            _unavailable = "OVMTUI_LAB=0"
        elif os.geteuid() != 0:
            _unavailable = "not root (the lab needs network namespaces, mounts, daemons)"
        else:
            result = lab_command("probe", timeout=30)
            _unavailable = None if result.returncode == 0 else result.stdout.strip()
    return _unavailable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab_items = [item for item in items if item.get_closest_marker("lab") is not None]
    if not lab_items:
        return
    # Last in the session: the session-scoped lab then comes up after every other test and
    # goes down right after its own, instead of running (3 guests, 2 daemons) under the
    # timing-sensitive UI tests.
    others = [item for item in items if item.get_closest_marker("lab") is None]
    items[:] = others + lab_items
    reason = lab_unavailable()
    if reason is not None:
        for item in lab_items:
            item.add_marker(pytest.mark.skip(reason=f"the lab cannot run here: {reason}"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Printed even with -q: a skipped lab must not pass unnoticed.
    if _unavailable not in (None, _NOT_PROBED):
        terminalreporter.write_line(f"lab tests SKIPPED: the lab cannot run here: {_unavailable}")
    if _timings:
        shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _timings.items())
        terminalreporter.write_line(f"lab: {shown}")


@dataclass
class Lab:
    """The running lab, as tests use it."""

    estate_path: Path
    estate: EstateConfig
    guests: dict[str, str] = field(default_factory=dict)  # guest -> the host it started on

    def virsh(self, host: str, *args: str) -> str:
        """virsh on a host, over its local socket (not the ssh path the tests exercise)."""
        result = lab_command("virsh", host, "-q", *args, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"virsh {' '.join(args)} on {host}: {result.stderr.strip()}")
        return result.stdout.strip()

    def domstate(self, host: str, vm: str) -> str:
        return self.virsh(host, "domstate", vm)

    def kill_libvirtd(self, host: str) -> None:
        """SIGKILL the host's libvirtd (its guests keep running, as after a real crash)."""
        self._lab("libvirtd", "kill", host)

    def start_libvirtd(self, host: str) -> None:
        self._lab("libvirtd", "start", host)

    def console_log(self, vm: str) -> str:
        path = LAB_DIR / "ovs" / "running_pool" / vm / "console.log"
        return path.read_text(errors="replace")

    def _lab(self, *args: str) -> None:
        result = lab_command(*args, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"lab.py {' '.join(args)}: {result.stderr.strip()}")


def _down() -> None:
    started = time.monotonic()
    result = lab_command("down", timeout=DOWN_TIMEOUT_S)
    _timings["lab down"] = time.monotonic() - started
    if result.returncode != 0:
        raise AssertionError(f"lab down left things behind:\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"the lab cannot run here: {reason}")
    lock = SESSION_LOCK.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    request.addfinalizer(lock.close)
    # Registered before starting (and so run before the lock is let go): a lab that fails
    # halfway up is torn down too.
    request.addfinalizer(_down)
    started = time.monotonic()
    result = lab_command("up", timeout=UP_TIMEOUT_S)
    _timings["lab up"] = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(f"lab up failed:\n{result.stdout}{result.stderr}", pytrace=False)
    estate_path = LAB_DIR / "estate.toml"
    yield Lab(estate_path, load_estate(estate_path), {"vm1": "h1", "vm2": "h1", "vm3": "h2"})
