"""Warnings that libraries address to their own developers (asyncssh touching
cryptography's deprecated DSA) are not printed to an operator; ovmtui's own are, and
whoever asks for warnings (-W, PYTHONWARNINGS, -X dev) still sees every one."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

# A host key for the known_hosts file: nothing listens on the port, so it is never checked;
# the file only has to exist for the SSH backend (and asyncssh) to be used at all.
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _ssh_estate(tmp_path: Path) -> Path:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:1 {HOST_KEY}\n")
    estate = tmp_path / "estate.toml"
    estate.write_text(
        "[[pools]]\nname = 'p'\n"
        # Nothing listens on port 1: refused at once, on loopback only.
        f"[[pools.hosts]]\nname = 'xen1'\nssh = 'root@127.0.0.1:1'\nknown_hosts = '{known_hosts}'\n"
    )
    return estate


def _inventory(
    tmp_path: Path, *python_options: str, **env: str
) -> subprocess.CompletedProcess[str]:
    estate = _ssh_estate(tmp_path)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | env
    return subprocess.run(
        [
            sys.executable,
            *python_options,
            "-m",
            "ovmtui",
            "inventory",
            "--config",
            str(estate),
            "--repository",
            str(tmp_path / "repository.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


def test_an_estate_with_an_ssh_host_prints_no_library_warnings(tmp_path: Path) -> None:
    proc = _inventory(tmp_path)
    assert proc.returncode == 1  # the host is unreachable: said on stdout
    assert "connection refused" in proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("options", "env"),
    [((), {"PYTHONWARNINGS": "default"}), (("-W", "default"), {}), (("-X", "dev"), {})],
    ids=["PYTHONWARNINGS", "-W", "-X dev"],
)
def test_whoever_asks_for_warnings_sees_them(
    tmp_path: Path, options: tuple[str, ...], env: dict[str, str]
) -> None:
    proc = _inventory(tmp_path, *options, **env)
    assert "CryptographyDeprecationWarning" in proc.stderr


def _shown(module: str, category: type[Warning]) -> bool:
    from ovmtui.cli import quiet_library_warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet_library_warnings()
        warnings.warn_explicit("something", category, "x.py", 1, module=module)
    return bool(seen)


def test_only_the_libraries_warnings_are_filtered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "warnoptions", [])
    assert not _shown("asyncssh.crypto.misc", UserWarning)
    assert not _shown("cryptography.hazmat.primitives", DeprecationWarning)
    assert _shown("ovmtui.backend.xen_ssh", UserWarning)
    assert _shown("ovmtui.store.repository", DeprecationWarning)
    assert _shown("asyncsshlike", UserWarning)  # another module whose name only starts so
