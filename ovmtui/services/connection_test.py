"""Test connection: every check of a host, each reported as it completes, stopping at none.

Resolve the name, open TCP, the SSH host key and the login (a Xen host's ``ssh =``, or the
ssh part of a ``qemu+ssh://`` URI), then the hypervisor (``xm``/``xl info`` and the toolstack
found; or libvirt's open, ``getCapabilities``, ``getInfo`` and versions), the pool's shared
storage mounted and the same as the other hosts see (the ``.ovmtui-pool`` marker), the
``ovs-agent`` of an Oracle VM server, and the host's clock against this machine's.

A check that cannot run because an earlier one failed is reported skipped (``ok`` None) with
why, as is one that does not apply (no pool given, no shell on a libvirt-over-TCP host).

Nothing is changed without the record: accepting an unknown host key (only ever on the
operator's explicit word, never for a changed key) and writing a pool's missing marker go
through ``Operations`` like every other change.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovmtui.backend.base import CommandOutput, HostShell
from ovmtui.config import HostConfig, PoolConfig
from ovmtui.errors import OvmError
from ovmtui.model import HostKey
from ovmtui.operations import Operation, Operations
from ovmtui.services import connection_probes as probes

TIMEOUT_S = 10.0
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass(frozen=True, slots=True)
class KeyOffer:
    """An unknown host key, with what the operator needs to decide: its fingerprint."""

    target: str  # user@host:port that offered it
    known_hosts: str  # the file it would go into (the one the host is checked against)
    algorithm: str
    fingerprint: str  # SHA256:…


@dataclass(frozen=True, slots=True)
class Check:
    """One check's result: ``ok`` True passed, False failed, None skipped (``detail`` says
    why). ``offer`` is set on the host-key check when the key is unknown."""

    name: str
    ok: bool | None
    detail: str
    ms: float | None = None
    offer: KeyOffer | None = None

    def as_json(self) -> dict[str, Any]:
        ms = round(self.ms, 1) if self.ms is not None else None
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "ms": ms}


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """Every check of one test, in order."""

    host: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """No check failed (skipped ones do not count against it) and one at least passed."""
        return all(c.ok is not False for c in self.checks) and any(c.ok for c in self.checks)

    @property
    def offer(self) -> KeyOffer | None:
        return next((c.offer for c in self.checks if c.offer is not None), None)

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "checks": [c.as_json() for c in self.checks]}


def ad_hoc_host(*, libvirt: str | None = None, ssh: str | None = None, **extra: Any) -> HostConfig:
    """A host that is in no estate file (``--libvirt URI`` / ``--ssh TARGET``)."""
    return HostConfig("", libvirt or ssh or "?", libvirt=libvirt, ssh=ssh, **extra)


class ConnectionTests:
    """Runs connection tests; one per core (``EstateSession.connection_tests``)."""

    def __init__(
        self,
        *,
        operations: Operations,
        pool_id: Callable[[str], Awaitable[str | None]],
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._operations = operations
        self._pool_id = pool_id
        self._timeout_s = timeout_s

    async def run(self, host: HostConfig, pool: PoolConfig | None = None) -> AsyncIterator[Check]:
        """Each check as it completes. ``pool``: the pool the host is (or will be) in."""
        run = _Run(self, host, pool)
        try:
            async for check in run.checks():
                yield check
        finally:
            await run.close()

    async def report(
        self,
        host: HostConfig,
        pool: PoolConfig | None = None,
        on_check: Callable[[Check], object] | None = None,
    ) -> ConnectionReport:
        checks: list[Check] = []
        async for check in self.run(host, pool):
            checks.append(check)
            if on_check is not None:
                on_check(check)
        return ConnectionReport(host.name, tuple(checks))

    def accept_command(self, offer: KeyOffer) -> str:
        """What accepting the key amounts to, as a shell command (shown before it is done)."""
        from ovmtui.backend.ssh_probe import accept_command
        from ovmtui.backend.xen_ssh import SshTarget

        return accept_command(SshTarget.parse(offer.target), offer.known_hosts)

    async def accept_key(self, offer: KeyOffer, host: HostConfig | None = None) -> str:
        """Add the offered key to its ``known_hosts``, on the record; only if the host still
        offers that very key. Returns the line added; raises ``OvmError`` (nothing added)."""
        from ovmtui.backend.ssh_probe import accept_host_key
        from ovmtui.backend.xen_ssh import SshTarget

        operation = Operation(
            "accept-host-key",
            f"{self.accept_command(offer)}  # {offer.algorithm} {offer.fingerprint}",
            pool=host.pool or None if host is not None else None,
            host=host.name if host is not None else offer.target,
        )
        target = SshTarget.parse(offer.target)

        async def work() -> str:
            return await accept_host_key(
                target, offer.known_hosts, offer.fingerprint, timeout_s=self._timeout_s
            )

        done = await self._operations.run(
            operation, work, outcome=lambda line: (True, f"added: {line}")
        )
        return done.value


class _Run:
    """The state of one test: what passed so far decides what the next checks can do."""

    def __init__(self, tests: ConnectionTests, host: HostConfig, pool: PoolConfig | None) -> None:
        self.tests = tests
        self.host = host
        self.pool = pool
        self.timeout_s = tests._timeout_s
        self.side = probes.ssh_side(host)
        self.endpoint: probes.Endpoint | None = None
        self.shell: HostShell | None = None
        self.logged_in = False
        self.why_no_shell = ""

    async def _sh(self, script: str) -> CommandOutput:
        assert self.shell is not None  # each probe checks for a login first
        return await _sh(self.shell, script, self.timeout_s)

    async def checks(self) -> AsyncIterator[Check]:
        try:
            self.endpoint = probes.endpoint(self.host, self.side)
        except OvmError as exc:
            yield Check("resolve", False, exc.message)
            return
        resolved = await self._timed("resolve", self._resolve)
        yield resolved
        reachable = await self._timed("tcp connect", lambda: self._tcp(resolved))
        yield reachable
        async for check in self._ssh_checks(reachable):
            yield check
        if self.host.ssh is not None:
            yield await self._timed("toolstack", self._toolstack)
        else:
            async for check in self._libvirt_checks(reachable):
                yield check
        storage = await self._timed("shared storage", self._storage)
        yield storage
        yield await self._timed("pool marker", lambda: self._marker(storage))
        yield await self._timed("ovs-agent", self._agent)
        yield await self._timed("clock", self._clock)

    async def close(self) -> None:
        if self.shell is not None:
            await self.shell.close()

    # -- helpers ----------------------------------------------------------------------------

    async def _timed(
        self, name: str, check: Callable[[], Awaitable[tuple[bool | None, str] | Check]]
    ) -> Check:
        started = time.perf_counter()
        try:
            result = await check()
        except OvmError as exc:
            result = (False, exc.message)
        ms = (time.perf_counter() - started) * 1000
        if isinstance(result, Check):
            taken = ms if result.ok is not None else None
            return Check(name, result.ok, result.detail, taken, result.offer)
        ok, detail = result
        # A skipped check did no work: its time would only be noise.
        return Check(name, ok, detail, ms if ok is not None else None)

    # -- the network --------------------------------------------------------------------------

    async def _resolve(self) -> tuple[bool | None, str]:
        point = self.endpoint
        if point is None:
            return None, f"{self.host.address} names no remote host: nothing to resolve"
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(point.host, point.port, type=socket.SOCK_STREAM),
                self.timeout_s,
            )
        except TimeoutError:
            return False, f"{point.what}{point.host}: no answer from DNS in {self.timeout_s:g} s"
        except OSError as exc:
            return False, f"{point.what}{point.host}: {exc.strerror or exc}"
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return True, f"{point.what}{point.host}: {', '.join(addresses)}"

    async def _tcp(self, resolved: Check) -> tuple[bool | None, str]:
        point = self.endpoint
        if point is None:
            return None, f"{self.host.address} names no remote host: no TCP to open"
        if resolved.ok is False:
            return None, f"skipped: {point.host} did not resolve"
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(point.host, point.port), self.timeout_s
            )
        except TimeoutError:
            return False, (
                f"{point.what}{point.host} port {point.port}: no answer in {self.timeout_s:g} s "
                "(a firewall dropping it, or the host is down)"
            )
        except ConnectionRefusedError:
            return False, f"{point.what}{point.host} port {point.port}: refused (nothing listens)"
        except OSError as exc:
            return False, f"{point.what}{point.host} port {point.port}: {exc.strerror or exc}"
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2.0)
        return True, f"{point.what}{point.host} port {point.port} open"

    # -- SSH ------------------------------------------------------------------------------------

    async def _ssh_checks(self, reachable: Check) -> AsyncIterator[Check]:
        side = self.side
        if side is None:
            why = "no SSH: " + (
                "the libvirt URI is not over SSH" if self.host.libvirt else "no ssh target"
            )
            self.why_no_shell = f"{self.host.name} has no shell ovmtui reaches ({why})"
            yield Check("ssh host key", None, why)
            yield Check("ssh login", None, why)
            return
        key = await self._timed("ssh host key", lambda: self._host_key(side, reachable))
        yield key
        login = await self._timed("ssh login", lambda: self._login(side, key))
        yield login
        self.logged_in = login.ok is True
        if not self.logged_in:
            self.why_no_shell = "skipped: not logged in over SSH"

    def _known_hosts(self, side: probes.SshSide) -> str:
        return str(Path(side.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser())

    async def _host_key(self, side: probes.SshSide, reachable: Check) -> Check:
        from ovmtui.backend.ssh_probe import host_key
        from ovmtui.backend.xen_ssh import SshTarget

        if reachable.ok is False:
            return Check("", None, "skipped: TCP did not connect")
        # Through a jump host, this machine only talks to the jump host: its key is the one
        # checked here; the host's own is checked by the login, through the tunnel.
        target = SshTarget.parse(side.jump or side.target)
        known_hosts = self._known_hosts(side)
        seen = await host_key(target, known_hosts, timeout_s=self.timeout_s)
        prefix = "jump host: " if side.jump else ""
        if seen.status == "trusted":
            return Check("", True, prefix + seen.detail)
        offer = None
        if seen.status == "unknown":
            offer = KeyOffer(str(target), known_hosts, seen.algorithm, seen.fingerprint)
        return Check("", False, prefix + seen.detail, offer=offer)

    async def _login(self, side: probes.SshSide, key: Check) -> tuple[bool | None, str]:
        from ovmtui.backend.xen_ssh import XenSshBackend

        if key.ok is not True:
            return None, "skipped: the host key is not trusted"
        backend = XenSshBackend(
            HostKey(self.host.pool, self.host.name),
            side.target,
            identity=side.identity,
            known_hosts=side.known_hosts,
            jump=side.jump,
            connect_timeout_s=self.timeout_s,
        )
        self.shell = backend
        await backend.connect()
        user = side.target.rpartition("@")[0] or "the current user"
        keys = side.identity or "the SSH agent or the default keys"
        return True, f"as {user}, with {keys}"

    # -- the hypervisor ------------------------------------------------------------------------

    async def _toolstack(self) -> tuple[bool | None, str]:
        if self.shell is None or not self.logged_in:
            return None, self.why_no_shell
        result = await self._sh(probes.toolstack_script(self.host.toolstack))
        return probes.toolstack_result(result.text)

    async def _libvirt_checks(self, reachable: Check) -> AsyncIterator[Check]:
        from ovmtui.backend.libvirt_probe import LibvirtProbe

        names = ("libvirt capabilities", "libvirt info", "libvirt version")
        uri = self.host.libvirt
        if uri is None:
            yield Check("libvirt open", None, "no libvirt URI")
            return
        if reachable.ok is False:
            yield Check("libvirt open", None, "skipped: TCP did not connect")
            for name in names:
                yield Check(name, None, "skipped: TCP did not connect")
            return
        probe = LibvirtProbe(uri, timeout_s=max(self.timeout_s, 20.0))
        try:
            opened = await self._timed("libvirt open", lambda: self._said(probe.open()))
            yield opened
            calls = (probe.capabilities, probe.info, probe.version)
            for name, call in zip(names, calls, strict=True):
                if opened.ok is not True:
                    yield Check(name, None, "skipped: the libvirt connection did not open")
                    continue
                yield await self._timed(name, lambda call=call: self._said(call()))  # type: ignore[misc]
        finally:
            await probe.close()

    @staticmethod
    async def _said(call: Awaitable[str]) -> tuple[bool | None, str]:
        return True, await call

    # -- the pool's storage -------------------------------------------------------------------

    def _storage_path(self) -> tuple[str | None, str]:
        if self.pool is None:
            return None, "no pool given: no shared storage to check"
        if not self.pool.shared_storage:
            return None, f"pool {self.pool.name} has no shared_storage"
        return self.pool.shared_storage, ""

    async def _storage(self) -> tuple[bool | None, str]:
        path, why = self._storage_path()
        if path is None:
            return None, why
        if self.shell is None or not self.logged_in:
            return None, self.why_no_shell
        result = await self._sh(probes.storage_script(path))
        return probes.storage_result(path, self.host.name, result.text)

    async def _marker(self, storage: Check) -> tuple[bool | None, str]:
        path, why = self._storage_path()
        if path is None or self.pool is None:
            return None, why
        if storage.ok is not True or self.shell is None:
            return None, "skipped: the shared storage is not mounted"
        pool_id = await self.tests._pool_id(self.pool.name)
        if pool_id is None:
            return None, f"pool {self.pool.name} has no id in the repository yet"
        result = await self._sh(probes.read_marker_script(path))
        try:
            found = probes.marker_read(result.text)
        except ValueError as exc:
            return False, f"{probes.marker_path(path)}: cannot read it: {exc}"
        marker = probes.marker_path(path)
        if found == pool_id:
            return True, f"{marker} holds {self.pool.name}'s id {pool_id}"
        if found is not None:
            return False, (
                f"{marker} holds {found!r}, not {self.pool.name}'s id {pool_id}: this is "
                "another pool's storage (or it was written by another repository). Check the "
                "mount; if it is right, replace the file's content with this pool's id"
            )
        writer = probes.marker_writer(self.pool)
        if writer != self.host.name:
            return False, (
                f"no {probes.MARKER_NAME} in {path} yet: the pool's utility host "
                f"({writer or 'none'}) writes it when its connection is tested; test it first"
            )
        return await self._write_marker(path, pool_id)

    async def _write_marker(self, path: str, pool_id: str) -> tuple[bool | None, str]:
        shell = self.shell
        assert shell is not None
        command = probes.write_marker_command(path, pool_id)
        operation = Operation(
            "write-pool-marker", command, pool=self.host.pool or None, host=self.host.name
        )

        async def work() -> str:
            result = await _sh(shell, command, self.timeout_s)
            if result.exit_status != 0:
                said = " ".join((result.error_text + result.text).split())
                raise OvmError(f"{probes.marker_path(path)}: not written: {said}")
            return probes.marker_path(path)

        try:
            done = await self.tests._operations.run(operation, work)
        except OvmError as exc:
            return False, exc.message
        return True, f"{done.value} written with this pool's id {pool_id}"

    # -- the Oracle VM agent and the clock -----------------------------------------------------

    async def _agent(self) -> tuple[bool | None, str]:
        if self.host.ssh is None:
            return None, "a libvirt host: ovs-agent runs on Oracle VM servers (Xen over SSH)"
        if self.shell is None or not self.logged_in:
            return None, self.why_no_shell
        result = await self._sh(probes.AGENT_SCRIPT)
        return probes.agent_result(result.text)

    async def _clock(self) -> tuple[bool | None, str]:
        if self.shell is None or not self.logged_in:
            return None, self.why_no_shell
        sent = time.time()
        result = await self._sh(probes.CLOCK_COMMAND)
        received = time.time()
        return probes.clock_result(result.text, sent, received)


async def _sh(shell: HostShell, script: str, timeout_s: float) -> CommandOutput:
    """A probe's script run by POSIX sh on the host, whatever its login shell is."""
    return await shell.run_command(
        ["sh", "-c", script], timeout=timeout_s, label=script.split("\n", 1)[0][:60]
    )
