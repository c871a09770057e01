"""`ovmtui host test`: a host's connection test from a shell, each check printed as it
completes, through the same core as the TUI's `T` (``EstateSession.connection_tests``).

An unknown host key is only ever accepted with ``--accept-new-key``: the fingerprint is
printed first, asked about on a terminal, and the test runs again with the key accepted.
A changed key is never accepted (the fix is printed instead).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.headless import host_key_for, session_for
from ovmtui.services.connection_test import (
    Check,
    ConnectionReport,
    ConnectionTests,
    KeyOffer,
    ad_hoc_host,
)

_MARK = {True: "ok", False: "FAIL", None: "skip"}


def format_check(check: Check) -> str:
    """One line: result, name, time, detail (``ovmtui host test`` and logs)."""
    ms = f"{check.ms:.0f} ms" if check.ms is not None else ""
    return f"{_MARK[check.ok]:<4}  {check.name:<20} {ms:>8}  {check.detail}"


def target_of(
    config: EstateConfig,
    name: str | None,
    *,
    libvirt: str | None = None,
    ssh: str | None = None,
    identity: str | None = None,
    known_hosts: str | None = None,
    pool: str | None = None,
) -> tuple[HostConfig, PoolConfig | None]:
    """The host to test and its pool: a host of the estate, or an ad-hoc URI / SSH target
    (checked against ``pool``'s storage when one is named)."""
    if name is not None:
        key = host_key_for(config, name)
        for estate_pool in config.pools:
            for host in estate_pool.hosts:
                if host.key == key:
                    return host, estate_pool
    extra: dict[str, str] = {}
    if identity:
        extra["identity"] = identity
    if known_hosts:
        extra["known_hosts"] = known_hosts
    if libvirt is None and ssh is None:
        raise ActionRefused("give a host's NAME, --libvirt URI or --ssh TARGET")
    found = None
    if pool is not None:
        found = next((p for p in config.pools if p.name == pool), None)
        if found is None:
            raise ActionRefused(f"no pool {pool!r} in {config.source}", title="No such pool")
    host = ad_hoc_host(libvirt=libvirt, ssh=ssh, **extra)
    if found is not None:
        host = dataclasses.replace(host, pool=found.name)
    return host, found


async def host_test_report(
    config: EstateConfig,
    repository: Path | None,
    host: HostConfig,
    pool: PoolConfig | None,
    out: TextIO,
    *,
    as_json: bool,
    accept_new_key: bool,
    confirm_key: Callable[[KeyOffer], bool],
    warn: TextIO,
) -> int:
    """Exit 0 only when every check passed (skipped ones do not fail it), else 1."""
    async with session_for(config, repository, warn) as session:
        tests = session.connection_tests
        report = await _one_test(tests, host, pool, out, as_json=as_json)
        offer = report.offer
        said = warn if as_json else out
        if offer is not None and not accept_new_key:
            said.write(
                f"{offer.target}: unknown host key {offer.algorithm} {offer.fingerprint}. If "
                "that fingerprint is the host's (ask its console or administrator), run again "
                "with --accept-new-key\n"
            )
        elif offer is not None:
            said.write(
                f"{offer.target} offers {offer.algorithm} {offer.fingerprint}, unknown to "
                f"{offer.known_hosts}.\n"
            )
            if not confirm_key(offer):
                said.write("not accepted; nothing was changed\n")
            else:
                try:
                    line = await tests.accept_key(offer, host)
                except OvmError as exc:
                    warn.write(f"ovmtui: {exc.title}: {exc}\n")
                    return 1
                said.write(f"added to {offer.known_hosts}: {line}\ntesting again:\n")
                report = await _one_test(tests, host, pool, out, as_json=as_json)
        elif accept_new_key and any(
            c.name == "ssh host key" and c.ok is False for c in report.checks
        ):
            said.write("the host key is not unknown but refused: nothing to accept\n")
        if as_json:
            out.write(json.dumps(report.as_json(), indent=2) + "\n")
        else:
            out.write("passed\n" if report.passed else "FAILED\n")
        return 0 if report.passed else 1


async def _one_test(
    tests: ConnectionTests,
    host: HostConfig,
    pool: PoolConfig | None,
    out: TextIO,
    *,
    as_json: bool,
) -> ConnectionReport:
    if not as_json:
        where = f" (pool {pool.name})" if pool is not None else ""
        address = f": {host.address}" if host.address != host.name else ""
        out.write(f"{host.name}{where}{address}\n")
        out.flush()

    def show(check: Check) -> None:
        if not as_json:
            out.write(format_check(check) + "\n")
            out.flush()

    return await tests.report(host, pool, on_check=show)
