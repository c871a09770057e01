"""The SSH side of a connection test: which host key a host offers, whether ``known_hosts``
trusts it, and accepting an unknown one once the operator has confirmed its fingerprint.

With ``xen_ssh`` the only modules importing asyncssh. Connecting and logging in are
``XenSshBackend``'s own (``connect``): the test uses the very path the polls use, so what it
passes is what the dashboard will do.

A key is only ever added when it is unknown: a changed key is refused here as everywhere
(the fix is the operator's: ``ssh-keygen -R``, after checking with the host's administrator).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh

from ovmtui.backend.xen_ssh import (
    CONNECT_TIMEOUT_S,
    SshTarget,
    _describe,
    _keyscan_hint,
    changed_key_text,
    known_hosts_pattern,
    recorded_keys,
    unknown_key_text,
)
from ovmtui.errors import ActionRefused, HostTimeout, HostUnreachable

KeyStatus = Literal["trusted", "unknown", "changed"]


@dataclass(frozen=True, slots=True)
class HostKeySeen:
    """The key a host offered and what ``known_hosts`` says of it."""

    status: KeyStatus
    algorithm: str
    fingerprint: str  # "SHA256:…", as ssh-keygen -l prints it
    known_hosts: str
    detail: str  # the operator's sentence (with the fix, when not trusted)


async def host_key(
    target: SshTarget, known_hosts: str, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> HostKeySeen:
    """Ask the host for its key (no login) and compare it with ``known_hosts``.

    When keys are recorded for the host, it is asked for a key of their algorithms, as
    OpenSSH does: a host with an ed25519 and an RSA key, recorded by its RSA one, is
    trusted, not "changed". Raises ``HostUnreachable`` / ``HostTimeout``.
    """
    recorded = await asyncio.to_thread(recorded_keys, known_hosts, target)
    algorithms = _algorithms_of(recorded)
    key = await _server_key(target, algorithms, timeout_s)
    if key is None and algorithms:
        # None of the recorded algorithms is offered any more: whatever it offers is a
        # change of key.
        key = await _server_key(target, (), timeout_s)
    if key is None:
        raise HostUnreachable(f"{target}: the host offered no host key")
    offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
    fingerprint = key.get_fingerprint("sha256")
    if any(_same_key(key, known) for known in recorded):
        detail = f"{offered}, as recorded in {known_hosts}"
        return HostKeySeen("trusted", key.get_algorithm(), fingerprint, known_hosts, detail)
    if recorded:
        detail = changed_key_text(target, known_hosts, offered)
        return HostKeySeen("changed", key.get_algorithm(), fingerprint, known_hosts, detail)
    detail = unknown_key_text(target, known_hosts, offered)
    return HostKeySeen("unknown", key.get_algorithm(), fingerprint, known_hosts, detail)


async def accept_host_key(
    target: SshTarget,
    known_hosts: str,
    fingerprint: str,
    *,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> str:
    """Add the host's key to ``known_hosts``, only if it still offers the key of
    ``fingerprint`` (what the operator confirmed) and no key is recorded for it yet.

    Returns the line added. Raises ``ActionRefused`` when the key offered now is another,
    or a key is recorded meanwhile (then nothing is written); ``HostUnreachable`` when the
    host cannot be asked. The file (and its directory) are created, owner-only, if missing.
    """
    seen = await host_key(target, known_hosts, timeout_s=timeout_s)
    if seen.status == "trusted":
        raise ActionRefused(
            f"{target}: its key {seen.fingerprint} is already in {known_hosts}; nothing was added",
            title="Key already known",
        )
    if seen.status == "changed":
        raise ActionRefused(f"{target}: {seen.detail}", title="Host key changed")
    if seen.fingerprint != fingerprint:
        raise ActionRefused(
            f"{target}: it now offers {seen.fingerprint}, not the {fingerprint} you "
            "confirmed; nothing was added. Test the connection again.",
            title="Host key differs",
        )
    key = await _server_key(target, (seen.algorithm,), timeout_s)
    if key is None or key.get_fingerprint("sha256") != fingerprint:
        raise ActionRefused(
            f"{target}: the key it offers changed while it was being added; nothing was added",
            title="Host key differs",
        )
    words = key.export_public_key("openssh").decode("ascii").split()
    line = f"{known_hosts_pattern(target)} {words[0]} {words[1]}\n"
    await asyncio.to_thread(_append_line, Path(known_hosts), line)
    return line.rstrip("\n")


def accept_command(target: SshTarget, known_hosts: str) -> str:
    """What accepting a key amounts to, in the shell's words (the journal's command)."""
    return _keyscan_hint(target, known_hosts)


async def _server_key(
    target: SshTarget, algorithms: Sequence[str], timeout_s: float
) -> asyncssh.SSHKey | None:
    try:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(
                target.host,
                target.port,
                config=None,  # the estate file says everything; ~/.ssh/config must not
                server_host_key_algs=list(algorithms) or (),
            ),
            timeout_s,
        )
    except TimeoutError:
        raise HostTimeout(f"{target}: no SSH answer within {timeout_s:.0f} s") from None
    except asyncssh.KeyExchangeFailed:
        return None  # none of those algorithms
    except (asyncssh.Error, OSError) as exc:
        raise HostUnreachable(f"{target}: {_describe(exc)}") from None


def _algorithms_of(keys: Sequence[asyncssh.SSHKey]) -> tuple[str, ...]:
    algorithms: list[str] = []
    for key in keys:
        names = getattr(key, "sig_algorithms", None) or (key.get_algorithm().encode(),)
        for name in names:
            text = name.decode() if isinstance(name, bytes) else str(name)
            if text not in algorithms:
                algorithms.append(text)
    return tuple(algorithms)


def _same_key(offered: asyncssh.SSHKey, known: asyncssh.SSHKey) -> bool:
    return bool(offered.public_data == known.public_data)


def _append_line(path: Path, line: str) -> None:
    """Append under an exclusive lock, ending a last line that has no newline first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+b") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        prefix = b""
        if size:
            file.seek(size - 1)
            if file.read(1) != b"\n":
                prefix = b"\n"
        file.write(prefix + line.encode("ascii"))
        file.flush()
        with contextlib.suppress(OSError):
            os.fsync(file.fileno())
