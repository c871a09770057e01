"""The domains of an SXP listing, read from the tree of :mod:`.sxp`.

Both readers of ``xm list -l`` (this tree reader, which is the reference and the one that
reports with lines, and the fast scanner of :mod:`.xm_list_long`) gather the same raw facts
of a ``(domain ...)``, which :func:`_build_domain` turns into a :class:`XenDomain`. Memory
is in MiB, CPU time and start time in seconds. Old ``xl`` prints a flatter dialect for
``xl list -l`` (``max_memkb``, ``target_memkb``, ``max_vcpus``, disks as
``(tap (physpath ..) (virtpath ..))``, MACs without colons, and for a PV guest one ")" too
many that closes the domain before its devices); the same readers serve it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ovmtui.backend.xen_parse.common import XenDomain, _float, _Issues, _mac, _ns, _uuid
from ovmtui.backend.xen_parse.devices import _disk, _disk_mode
from ovmtui.backend.xen_parse.flags import _domain_state
from ovmtui.backend.xen_parse.sxp import SxpValue, _sxp_child, _sxp_values, _SxpText
from ovmtui.model import Disk, Nic, Vm

_IMAGE_KINDS = {"hvm": "hvm", "linux": "xen"}
_DISK_KINDS = frozenset({"vbd", "tap", "tap2"})
_DEVICE_KINDS = _DISK_KINDS | {"vif"}


class _Report(Protocol):
    def __call__(self, reason: str, key: str | None = None, device: int | None = None) -> None: ...


@dataclass(slots=True)
class _DomainFacts:
    """The raw facts of one ``(domain ...)``, however they were read."""

    values: dict[str, str]  # (key value) children, first of a key wins
    image_kind: str | None  # head of the first list in (image ...): hvm, linux
    devices: list[tuple[str, dict[str, str]]]  # (kind, (key value) children) of disks, NICs


def _build_domain(facts: _DomainFacts, report: _Report) -> XenDomain | None:
    values = facts.values

    def integer(key: str) -> int | None:
        text = values.get(key)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            report(f"{key} is not a number", key=key)
            return None

    def decimal(key: str) -> float | None:
        text = values.get(key)
        if text is None:
            return None
        value = _float(text)
        if value is None:
            report(f"{key} is not a number", key=key)
        return value

    def mib(mib_key: str, kib_key: str) -> int | None:
        size = integer(mib_key)
        if size is None:
            kib = integer(kib_key)  # old xl
            size = kib // 1024 if kib is not None else None
        return size if size is not None and size >= 0 else None  # xl prints -1: "default"

    name = values.get("name")
    raw_uuid = values.get("uuid")
    uuid = _uuid(raw_uuid) if raw_uuid is not None else None
    if name is None or uuid is None:
        missing = "a name" if name is None else "a uuid" if raw_uuid is None else "a valid uuid"
        report(f"domain without {missing}: left out")
        return None
    domid = integer("domid")
    domid = domid if domid is not None and domid >= 0 else None
    # xm list shows the online VCPUs; 0 while the domain does not run, when the configured
    # count tells more. Old xl has max_vcpus only.
    vcpus = integer("online_vcpus") or integer("vcpus")
    if vcpus is None:
        vcpus = integer("max_vcpus")
    cpu_time = decimal("cpu_time")
    started_at = decimal("start_time")
    disks: list[Disk] = []
    nics: list[Nic] = []
    for index, (kind, fields) in enumerate(facts.devices):
        if kind == "vif":
            model = fields.get("model") or fields.get("type")
            nics.append(Nic(mac=_mac(fields.get("mac")), network=fields.get("bridge"), model=model))
            continue
        disk = _sxp_disk(fields)
        if disk is None:
            report("disk without a device name: left out", device=index)
        else:
            disks.append(disk)
    os_type = _IMAGE_KINDS.get(facts.image_kind or "") or {"1": "hvm", "0": "xen"}.get(
        values.get("hvm", "")  # old xl: (hvm 0|1)
    )
    vm = Vm(
        uuid=uuid,
        name=name,
        state=_domain_state(values.get("state"), domid),
        vcpus=vcpus,
        memory_mib=mib("memory", "target_memkb"),
        max_memory_mib=mib("maxmem", "max_memkb"),
        cpu_time_ns=_ns(cpu_time),
        started_at=started_at,
        domain_id=domid,
        disks=tuple(disks),
        nics=tuple(nics),
        os_type=os_type,
    )
    return XenDomain(vm=vm, is_dom0=domid == 0 or name == "Domain-0")


def _sxp_disk(fields: dict[str, str]) -> Disk | None:
    dev = fields.get("dev") or fields.get("virtpath")  # xend | old xl
    if not dev:
        return None
    uname = fields.get("uname") or fields.get("physpath")
    mode = fields.get("mode")
    if mode is not None:
        read_only, shareable = _disk_mode(mode)
    else:  # old xl: (readwrite 0|1)
        read_only, shareable = fields.get("readwrite") == "0", False
    return _disk(dev, uname, read_only, shareable, cdrom=fields.get("is_cdrom") == "1")


def _duplicates(domains: Sequence[XenDomain]) -> list[tuple[int, str]]:
    """(index, reason) of each domain whose id or uuid an earlier one already had."""
    found: list[tuple[int, str]] = []
    seen_ids: set[int] = set()
    seen_uuids: set[str] = set()
    for index, domain in enumerate(domains):
        vm = domain.vm
        if vm.domain_id is not None:
            if vm.domain_id in seen_ids:
                found.append((index, f"domain id {vm.domain_id} appears twice"))
            seen_ids.add(vm.domain_id)
        if vm.uuid in seen_uuids:
            found.append((index, f"uuid {vm.uuid} appears twice (a local migration?)"))
        seen_uuids.add(vm.uuid)
    return found


class _SxpDomainReader:
    """Turns the ``(domain ...)`` lists of a tree into XenDomains, reporting with lines."""

    def __init__(self, source: _SxpText, issues: _Issues) -> None:
        self.source = source
        self.issues = issues

    def _groups(self) -> list[tuple[list[SxpValue], list[list[SxpValue]]]]:
        """Each ``(domain ...)`` with the ``(device ...)`` lists that follow it outside.

        Old xl prints a PV domain with one ")" too many after its image, closing the
        domain before its devices: they still belong to it.
        """
        groups: list[tuple[list[SxpValue], list[list[SxpValue]]]] = []
        stray_run = False
        for value in self.source.top:
            if isinstance(value, str):
                if not stray_run:
                    self.issues.add(self.issues.find_line(value), "text outside any (domain ...)")
                stray_run = True
                continue
            stray_run = False
            head = value[0] if value else None
            if head == "domain":
                groups.append((value, []))
            elif head == "device" and groups:
                if not groups[-1][1]:
                    self.issues.add(
                        self.source.line_of(value),
                        "(device ...) after the end of its (domain ...): read as its device",
                    )
                groups[-1][1].append(value)
            else:
                shown = head if isinstance(head, str) else "(...)"
                self.issues.add(
                    self.source.line_of(value), f"expected (domain ...), found ({shown} ...)"
                )
        return groups

    def domains(self) -> tuple[XenDomain, ...]:
        found: list[XenDomain] = []
        nodes: list[list[SxpValue]] = []
        for node, outside in self._groups():
            domain = self.domain(node, outside)
            if domain is not None:
                found.append(domain)
                nodes.append(node)
        for index, reason in _duplicates(found):
            self.issues.add(self.source.line_of(nodes[index]), reason)
        return tuple(found)

    def domain(
        self, node: list[SxpValue], outside: Sequence[list[SxpValue]] = ()
    ) -> XenDomain | None:
        image: list[SxpValue] | None = None
        bodies: list[list[SxpValue]] = []
        stray: str | None = None
        for child in (*node[1:], *outside):
            if isinstance(child, list):
                if len(child) > 1:
                    head = child[0]
                    if head == "device":
                        body = child[1]
                        if isinstance(body, list) and body:
                            kind = body[0]
                            if isinstance(kind, str) and kind in _DEVICE_KINDS:
                                bodies.append(body)
                    elif head == "image" and image is None:
                        image = child
            elif stray is None:
                stray = child
        if stray is not None:
            start = self.source.line_of(node) or 1
            line = self.issues.find_line(stray, start)
            self.issues.add(line, "text outside a (key value) pair in (domain ...)")
        image_kind = None
        if image is not None:
            first = next((child for child in image[1:] if type(child) is list and child), None)
            image_kind = first[0] if first is not None and isinstance(first[0], str) else None
        devices = [(str(body[0]), _sxp_values(body)) for body in bodies]

        def report(reason: str, key: str | None = None, device: int | None = None) -> None:
            if device is not None:
                where = bodies[device]
            elif key is not None:
                where = _sxp_child(node, key) or node
            else:
                where = node
            self.issues.add(self.source.line_of(where), reason)

        return _build_domain(_DomainFacts(_sxp_values(node), image_kind, devices), report)
