"""`ovmtui host test` of the lab's hosts (real libvirtd over TCP in their namespaces): every
libvirt check passes, what needs a shell is skipped saying why, and the exit status is 0; a
host whose libvirtd is killed fails its libvirt checks and exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.lab.conftest import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

BINARY = Path(sys.executable).with_name("ovmtui")


def host_test(lab: Lab, tmp_path: Path, host: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run(
        [
            str(BINARY),
            "--config",
            str(lab.estate_path),
            "--repository",
            str(tmp_path / "r.sqlite"),
            "host",
            "test",
            host,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, json.loads(done.stdout)


def test_the_lab_hosts_pass(lab: Lab, tmp_path: Path) -> None:
    for name in ("h1", "h2"):
        status, report = host_test(lab, tmp_path, name)
        checks = {c["name"]: c for c in report["checks"]}
        assert status == 0, report
        for check in ("libvirt open", "libvirt capabilities", "libvirt info", "libvirt version"):
            assert checks[check]["ok"] is True, checks[check]
        assert "QEMU" in checks["libvirt version"]["detail"]
        assert all(c["ok"] is not False for c in report["checks"])


def test_a_host_whose_libvirtd_is_down_fails(lab: Lab, tmp_path: Path) -> None:
    lab.kill_libvirtd("h2")
    try:
        status, report = host_test(lab, tmp_path, "h2")
    finally:
        lab.start_libvirtd("h2")
    checks = {c["name"]: c for c in report["checks"]}
    assert status == 1
    assert checks["libvirt open"]["ok"] is False or checks["tcp connect"]["ok"] is False
