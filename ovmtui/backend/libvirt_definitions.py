"""Definitions as a libvirt host holds them: read for the repository, defined again by a restore.

Part of the libvirt backend (only ``backend/libvirt*.py`` import ``libvirt``). Everything here
runs on a session's worker thread: these are calls to the host.

What is read is the *persistent* definition, what ``virsh define`` would be given: a running
domain's live XML carries what only this run has (its ID, its console's pty, its VNC port,
device aliases), so it would make a "new version" at every start. A shut-off domain's
``XMLDesc(0)`` is its persistent definition already: no second call. Transient domains,
networks and pools have nothing to define again and are left out.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from typing import Any

import libvirt

from ovmtui.backend.libvirt_errors import code as _code
from ovmtui.backend.libvirt_errors import is_connection_error as _is_connection_error
from ovmtui.model import Definition, DefinitionKind

# Drivers that have no INACTIVE flag for networks and pools (the test driver) answer with
# one of these: their XMLDesc(0) then is the only definition there is.
_NO_FLAG = (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT)


def definition_of(
    kind: DefinitionKind, uuid: str, name: str, text: str, *, active: bool = False
) -> Definition:
    """A ``Definition`` with its SHA-256 (computed here, on the worker, not on the loop)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Definition(kind, uuid.lower(), name, text, digest, active)


def persistent_domain_xml(dom: Any, xml: str, *, shut_off: bool) -> str:
    """The domain's persistent definition: ``xml`` (its XMLDesc(0)) when it is shut off."""
    if shut_off:
        return xml
    return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def _inactive_xml(obj: Any, flag: int) -> str:
    try:
        return str(obj.XMLDesc(flag))
    except libvirt.libvirtError as exc:
        if _code(exc) not in _NO_FLAG:
            raise
    return str(obj.XMLDesc(0))


def read_infrastructure(conn: Any) -> list[Definition]:
    """Every persistent network and storage pool of the host, with whether it runs.

    One that vanishes while it is read is left out; a connection error is raised (the poll
    fails with it), any other error leaves that one out until the next read.
    """
    found: list[Definition] = []
    for kind, objects, flag in (
        (DefinitionKind.NETWORK, conn.listAllNetworks, libvirt.VIR_NETWORK_XML_INACTIVE),
        (DefinitionKind.STORAGE_POOL, conn.listAllStoragePools, libvirt.VIR_STORAGE_XML_INACTIVE),
    ):
        try:
            listed = objects(0)
        except libvirt.libvirtError as exc:
            if _is_connection_error(exc):
                raise
            continue  # a driver without networks or pools
        for obj in listed:
            try:
                if not obj.isPersistent():
                    continue
                text = _inactive_xml(obj, flag)
                found.append(
                    definition_of(
                        kind,
                        str(obj.UUIDString()),
                        str(obj.name()),
                        text,
                        active=bool(obj.isActive()),
                    )
                )
            except libvirt.libvirtError as exc:
                if _is_connection_error(exc):
                    raise
    return found


def read_all(conn: Any) -> list[Definition]:
    """Networks, storage pools and every persistent domain's definition, read now."""
    found = read_infrastructure(conn)
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
        try:
            text = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            found.append(
                definition_of(
                    DefinitionKind.DOMAIN,
                    str(dom.UUIDString()),
                    str(dom.name()),
                    text,
                    active=bool(dom.isActive()),
                )
            )
        except libvirt.libvirtError as exc:
            if _is_connection_error(exc):
                raise
    return found


def register_infrastructure_events(
    conn: Any, callback: Callable[[], None]
) -> list[tuple[str, int]]:
    """Network and storage pool lifecycle events (defined, undefined, started, stopped) call
    ``callback`` on libvirt's event thread. Returns what to deregister; raises
    ``libvirtError`` when the driver has no such events (then every poll reads them)."""

    def on_event(*_args: Any) -> None:
        try:
            callback()
        except Exception:
            return

    ids = [
        (
            "network",
            conn.networkEventRegisterAny(
                None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_event, None
            ),
        )
    ]
    try:
        ids.append(
            (
                "pool",
                conn.storagePoolEventRegisterAny(
                    None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, on_event, None
                ),
            )
        )
    except libvirt.libvirtError:
        deregister_infrastructure_events(conn, ids)
        raise
    return ids


def deregister_infrastructure_events(conn: Any, ids: list[tuple[str, int]]) -> None:
    for what, event_id in ids:
        try:
            if what == "network":
                conn.networkEventDeregisterAny(event_id)
            else:
                conn.storagePoolEventDeregisterAny(event_id)
        except libvirt.libvirtError:
            continue


def define_in(conn: Any, kind: DefinitionKind, text: str) -> str:
    """Define persistently; returns the UUID. Raises ``libvirtError``."""
    if kind is DefinitionKind.NETWORK:
        return str(conn.networkDefineXML(text).UUIDString()).lower()
    if kind is DefinitionKind.STORAGE_POOL:
        return str(conn.storagePoolDefineXML(text, 0).UUIDString()).lower()
    return str(conn.defineXML(text).UUIDString()).lower()


def start_in(conn: Any, kind: DefinitionKind, uuid: str) -> None:
    """Start what is defined (already running: nothing to do). Raises ``libvirtError``."""
    if kind is DefinitionKind.NETWORK:
        obj = conn.networkLookupByUUIDString(uuid)
    elif kind is DefinitionKind.STORAGE_POOL:
        obj = conn.storagePoolLookupByUUIDString(uuid)
    else:
        obj = conn.lookupByUUIDString(uuid)
    if not obj.isActive():
        obj.create()


_VERBS = {
    DefinitionKind.NETWORK: ("net-define", "net-start"),
    DefinitionKind.STORAGE_POOL: ("pool-define", "pool-start"),
    DefinitionKind.DOMAIN: ("define", "start"),
}


def restore_command(uri: str, kind: DefinitionKind, name: str, *, start: bool) -> str:
    """``virsh -c URI define NAME.xml`` (and ``&& virsh … start NAME``), quoted: the file is
    the recorded definition (``ovmtui history`` prints it)."""
    define, begin = _VERBS[kind]
    command = shlex.join(["virsh", "-c", uri, define, f"{name}.xml"])
    if start:
        command += " && " + shlex.join(["virsh", "-c", uri, begin, name])
    return command
