"""``XenSshBackend.run_command``: an argv run on the host over the open connection, each
argument one argument there, its output as bytes (file names need not be UTF-8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_host

__all__ = ["fake_xen_host"]  # a pytest fixture


async def test_argv_stays_argv_and_output_is_bytes(fake_xen_host: Any, tmp_path: Path) -> None:
    backend = backend_for(fake_xen_host)
    pwned = tmp_path / "pwned"
    try:
        opened = backend.connections_opened
        result = await backend.run_command(
            ["printf", "%s\\0", f"x; touch {pwned}", "caf\xe9"], timeout=10, label="printf"
        )
        assert result.exit_status == 0
        assert result.stdout == f"x; touch {pwned}\0caf\xe9\0".encode()
        failed = await backend.run_command(
            ["sh", "-c", "echo no >&2; exit 3"], timeout=10, label="x"
        )
        assert (failed.exit_status, failed.stderr) == (3, b"no\n")
        latin1 = await backend.run_command(["printf", "\\351"], timeout=10, label="bytes")
        assert latin1.stdout == b"\xe9"
        assert backend.connections_opened == max(opened, 1)  # one connection, reused
        assert not pwned.exists()
    finally:
        await backend.close()
