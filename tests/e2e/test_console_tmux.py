"""`ovmtui console VM`, the real binary in a real terminal, on a fake Xen dom0 behind a real
sshd: the guest's boot log and shell on screen, a command typed and answered, Ctrl+] ends the
program with 0; an unknown VM or one that is off ends it with 1 and the reason."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.tmux import TmuxSession
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

pytestmark = pytest.mark.e2e

BINARY = Path(sys.executable).with_name("ovmtui")


def estate_file(tmp_path: Path, xen: FakeXenHost) -> Path:
    path = tmp_path / "estate.toml"
    path.write_text(
        f'repository = "{tmp_path / "repository.sqlite"}"\n'
        '[[pools]]\nname = "prod"\n[[pools.hosts]]\nname = "ovs07"\n'
        f'ssh = "{xen.ssh_target}"\nidentity = "{xen.client_key}"\n'
        f'known_hosts = "{xen.known_hosts}"\ntoolstack = "xm"\n'
    )
    return path


def start(fake_xen_servers: Any) -> FakeXenHost:
    domains = [
        make_domain("web01", uuid="0004fb00-0006-0000-2222-000000000001", domid=7),
        make_domain("off01", uuid="0004fb00-0006-0000-2222-000000000002", domid=None, state=""),
    ]
    server = fake_xen_servers([HostSpec("ovs07", toolstack="xm", domains=domains)])
    host: FakeXenHost = server.hosts[0]
    return host


def wait_exit(session: TmuxSession, timeout: float = 15.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = session.exit_status()
        if status is not None:
            return status
        time.sleep(0.1)
    return None


def test_ovmtui_console_attaches_types_and_leaves_with_0(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    assert BINARY.exists(), f"{BINARY} missing: run make install"
    xen = start(fake_xen_servers)
    config = estate_file(tmp_path, xen)
    session = TmuxSession(
        [str(BINARY), "console", "web01", "--config", str(config), "--console-log", str(tmp_path)],
        env={"TERM": "xterm-256color"},
    )
    try:
        session.wait_text("heartbeat", timeout=30)
        screen = session.wait_text("xm console 7")  # the status line
        assert "web01 on ovs07" in screen and "attached" in screen
        session.type("echo typed-in-tmux")
        session.send("Enter")
        session.wait_for(
            lambda s: any(line.strip() == "typed-in-tmux" for line in s.splitlines()),
            what="the guest's answer",
        )
        session.send("C-]")
        assert wait_exit(session) == 0
    finally:
        session.kill()
    (log,) = tmp_path.glob("web01-*.log")
    assert b"typed-in-tmux" in log.read_bytes()
    # The console's process on the host ended with the program (the fake logs how).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = xen.console_log()
        attached = [pid for pid, what in log if what.startswith("attach ")]
        ended = [pid for pid, what in log if what in ("escape", "eof", "hup", "term", "gone")]
        if attached and sorted(attached) == sorted(ended):
            break
        time.sleep(0.1)
    assert attached and sorted(attached) == sorted(ended), xen.console_log()
    assert not set(attached) & xen.server.all_pids()


@pytest.mark.parametrize(
    ("vm", "said"),
    [("nosuch", "no VM 'nosuch' in the estate"), ("off01", "no console: the VM is shutoff")],
)
def test_ovmtui_console_of_a_vm_without_one_exits_1_saying_why(
    fake_xen_servers: Any, tmp_path: Path, vm: str, said: str
) -> None:
    xen = start(fake_xen_servers)
    config = estate_file(tmp_path, xen)
    done = subprocess.run(
        [str(BINARY), "console", vm, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr
