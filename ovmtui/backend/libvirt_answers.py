"""A libvirt host's answers to what a migration needs (``MigrationNeeds``), asked of each
candidate target before a move: CPU compatibility, which disk paths it sees, which networks
it has, and how much memory migrations into it already claim.

Split from ``libvirt_migrate.py`` (the move itself). Run on the target connection's worker
(``LibvirtBackend.can_host``). What the host cannot tell is None, shown as unknown and never
as passed; a lost connection raises ``libvirtError`` for ``libvirt.py`` to translate.
"""

from __future__ import annotations

import contextlib
import posixpath
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import libvirt

from ovmtui.backend.libvirt_errors import code, is_connection_error, message
from ovmtui.backend.libvirt_storage import pool_xml
from ovmtui.backend.libvirt_xml import cpu_is_host
from ovmtui.model import MigrationNeeds, TargetAnswers

_PROBE_PREFIX = "ovmtui-probe-"
_NO_SUCH_FILE = "No such file or directory"

_COMPARISONS: dict[int, tuple[bool, str]] = {
    libvirt.VIR_CPU_COMPARE_IDENTICAL: (True, "identical"),
    libvirt.VIR_CPU_COMPARE_SUPERSET: (True, "superset: this host offers all the VM's CPU needs"),
    libvirt.VIR_CPU_COMPARE_INCOMPATIBLE: (False, "incompatible"),
}


def answer_needs(conn: Any, needs: MigrationNeeds) -> TargetAnswers:
    """On the target connection's worker: this host's answers. What it cannot tell is None;
    a lost connection raises (``libvirtError``)."""
    compatible, detail = _compare_cpu(conn, needs)
    return TargetAnswers(
        cpu_compatible=compatible,
        cpu_detail=detail,
        paths_visible=_paths_visible(conn, needs.disk_paths),
        networks_present={name: _network_present(conn, name) for name in needs.networks},
        incoming_mib=_incoming_mib(conn),
    )


def _unknown_or_raise(exc: Any) -> None:
    """An answer this host could not give: unknown, unless the connection is gone."""
    if is_connection_error(exc):
        raise exc


def _compare_cpu(conn: Any, needs: MigrationNeeds) -> tuple[bool | None, str]:
    definition = needs.cpu_definition
    if definition is None:
        return None, "not compared: the VM's definition names no CPU model"
    fail = libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE
    if cpu_is_host(definition):
        # A host-model or host-passthrough guest sees its host's CPU: compare the hosts.
        how = "the source host's CPU against this host's (compareCPU)"
        calls: list[Callable[[], int]] = [lambda: conn.compareCPU(definition, fail)]
    else:
        how = "compareHypervisorCPU"
        calls = [
            lambda: conn.compareHypervisorCPU(
                None, needs.arch, None, needs.virt_type, definition, fail
            ),
            lambda: conn.compareCPU(definition, fail),
        ]
    for index, call in enumerate(calls):
        try:
            result = int(call())
        except libvirt.libvirtError as exc:
            error = code(exc)
            if error == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                return False, f"incompatible ({how}): {message(exc)}"
            if error == libvirt.VIR_ERR_NO_SUPPORT and index + 1 < len(calls):
                how = "compareCPU: this host has no compareHypervisorCPU"
                continue
            _unknown_or_raise(exc)
            return None, f"not compared ({how}): {message(exc)}"
        known = _COMPARISONS.get(result)
        if known is None:
            return None, f"not compared ({how}): libvirt answered {result}"
        return known[0], f"{known[1]} ({how})"
    raise AssertionError("unreachable")  # pragma: no cover - the last call returns


def _paths_visible(conn: Any, paths: Sequence[str]) -> dict[str, bool | None]:
    """Whether this host sees each path.

    A volume (``pool/volume``) is looked up in its pool. A file or device is visible when a
    storage pool of this host lists it (``storageVolLookupByPath``). libvirt has no "stat",
    so for a file no pool lists, its directory is listed by a transient ``dir`` pool made
    for the purpose and destroyed at once (``ovmtui-probe-…``; one per directory): listed,
    visible; not listed or no such directory, not visible; the probe refused (no storage
    driver, a pool already there): unknown. A device no pool lists and a network disk
    (``rbd:pool/image``) are unknown.
    """
    answers: dict[str, bool | None] = {}
    to_probe: dict[str, list[str]] = {}
    for path in paths:
        if not path.startswith("/"):
            answers[path] = None if ":" in path else _volume_present(conn, path)
            continue
        try:
            conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                _unknown_or_raise(exc)
            if path.startswith("/dev/"):
                answers[path] = None
            else:
                to_probe.setdefault(posixpath.dirname(path), []).append(path)
        else:
            answers[path] = True
    for directory, files in to_probe.items():
        answers.update(_probe_directory(conn, directory, files))
    return {path: answers[path] for path in paths}


def _volume_present(conn: Any, pool_volume: str) -> bool | None:
    pool_name, _, volume = pool_volume.partition("/")
    try:
        conn.storagePoolLookupByName(pool_name).storageVolLookupByName(volume)
    except libvirt.libvirtError as exc:
        if code(exc) in (libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL):
            return False
        _unknown_or_raise(exc)
        return None
    return True


def _probe_directory(conn: Any, directory: str, files: Sequence[str]) -> dict[str, bool | None]:
    name = f"{_PROBE_PREFIX}{secrets.token_hex(6)}"
    try:
        pool = conn.storagePoolCreateXML(
            pool_xml(name, directory), 0
        )  # transient: gone once destroyed
    except libvirt.libvirtError as exc:
        if code(exc) == libvirt.VIR_ERR_SYSTEM_ERROR and _NO_SUCH_FILE in message(exc):
            return dict.fromkeys(files, False)
        _unknown_or_raise(exc)
        return dict.fromkeys(files, None)
    try:
        found: dict[str, bool | None] = {}
        for path in files:
            try:
                conn.storageVolLookupByPath(path)
            except libvirt.libvirtError as exc:
                if code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    _unknown_or_raise(exc)
                    found[path] = None
                else:
                    found[path] = False
            else:
                found[path] = True
        return found
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            pool.destroy()


def _network_present(conn: Any, name: str) -> bool | None:
    """A libvirt network of that name, else a host interface (a bridge, or the device of a
    macvtap NIC); unknown when this host can list neither."""
    answers_known = True
    try:
        conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if code(exc) != libvirt.VIR_ERR_NO_NETWORK:
            _unknown_or_raise(exc)
            answers_known = False  # no network driver: the interfaces may still tell
    else:
        return True
    try:
        conn.interfaceLookupByName(name)
    except libvirt.libvirtError as exc:
        if code(exc) == libvirt.VIR_ERR_NO_INTERFACE:
            return False if answers_known else None
        _unknown_or_raise(exc)
        return None
    return True


def _incoming_mib(conn: Any) -> int:
    """Memory of the domains migrating into this host now: paused, starting up or waiting
    for their memory (the qemu driver), and either reporting an incoming job or refusing
    statistics as a migration's target does ("available only on the source host")."""
    try:
        paused = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED)
    except libvirt.libvirtError as exc:
        _unknown_or_raise(exc)
        return 0
    total_kib = 0
    for dom in paused:
        try:
            state, reason = dom.state()[:2]
            if state != libvirt.VIR_DOMAIN_PAUSED or reason not in (
                libvirt.VIR_DOMAIN_PAUSED_MIGRATION,
                libvirt.VIR_DOMAIN_PAUSED_STARTING_UP,
            ):
                continue
            try:
                stats = dom.jobStats()
            except libvirt.libvirtError as exc:
                incoming = code(exc) == libvirt.VIR_ERR_OPERATION_UNSUPPORTED
            else:
                operation = stats.get("operation")
                incoming = operation == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN
            if incoming:
                total_kib += int(dom.maxMemory())
        except libvirt.libvirtError as exc:
            _unknown_or_raise(exc)  # gone meanwhile: it is not coming
    return total_kib // 1024
