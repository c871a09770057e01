"""`ovmtui host test` of the lab's hosts (real libvirtd over qemu+ssh in their namespaces):
every check passes (the ovs-agent is skipped: no Oracle VM server), exit 0; a host whose
libvirtd is killed fails its libvirt checks and exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.lab.conftest import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

# This checkout's ovmtui (the virtualenv's `ovmtui` script may be another checkout's).
ROOT = Path(__file__).resolve().parents[3]


def host_test(lab: Lab, tmp_path: Path, host: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ovmtui",
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
        cwd=ROOT,
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
        # The ssh side of the qemu+ssh URI, the shared directory mounted on each host, and
        # its marker: written by h1 (master and utility), read by h2.
        for check in ("ssh host key", "ssh login", "shared storage", "pool marker", "clock"):
            assert checks[check]["ok"] is True, checks[check]
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
