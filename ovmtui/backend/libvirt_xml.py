"""Pure parsers of libvirt's XML: domain definitions and host capabilities.

No libvirt import here: these take text and return domain objects, so they are tested on
their own and reused by anything that meets libvirt XML (exported definitions, later).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ovmtui.errors import ParseError
from ovmtui.model import Disk, Nic

_KIB_PER_UNIT: dict[str, float] = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "kb": 1000 / 1024,
    "k": 1,
    "kib": 1,
    "mb": 1000**2 / 1024,
    "m": 1024,
    "mib": 1024,
    "gb": 1000**3 / 1024,
    "g": 1024**2,
    "gib": 1024**2,
    "tb": 1000**4 / 1024,
    "t": 1024**3,
    "tib": 1024**3,
}


@dataclass(frozen=True, slots=True)
class DomainStatic:
    """What a domain's XML says: the part of a VM that changes only on redefinition."""

    vcpus: int | None = None
    memory_mib: int | None = None  # <currentMemory>: what it boots with
    max_memory_mib: int | None = None  # <memory>
    os_type: str | None = None
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    persistent: bool | None = None  # not in the XML: filled in from isPersistent()


def parse_domain_xml(text: str) -> DomainStatic:
    """Read the static facts of a VM from its domain XML. Raises ``ParseError``."""
    try:
        root = ET.fromstring(text)  # noqa: S314 - XML from our own libvirt connection
    except ET.ParseError as exc:
        raise ParseError(f"domain XML: {exc}") from None
    if root.tag != "domain":
        raise ParseError(f"domain XML: expected <domain>, found <{root.tag}>")
    max_mib = _memory_mib(root.find("memory"))
    current_mib = _memory_mib(root.find("currentMemory"))
    return DomainStatic(
        vcpus=_vcpus(root.find("vcpu")),
        memory_mib=current_mib if current_mib is not None else max_mib,
        max_memory_mib=max_mib,
        os_type=_text(root.find("os/type")),
        disks=tuple(_disk(elem) for elem in root.iterfind("devices/disk")),
        nics=tuple(_nic(elem) for elem in root.iterfind("devices/interface")),
    )


def _text(elem: ET.Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    return elem.text.strip() or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _vcpus(elem: ET.Element | None) -> int | None:
    if elem is None:
        return None
    # current= is what the guest has now; the text is the hotplug maximum.
    current = _int(elem.get("current"))
    return current if current is not None else _int(elem.text)


def _memory_mib(elem: ET.Element | None) -> int | None:
    if elem is None:
        return None
    amount = _int(elem.text)
    factor = _KIB_PER_UNIT.get(elem.get("unit", "KiB").lower())
    if amount is None or factor is None:
        return None
    return int(amount * factor) // 1024


def _disk(elem: ET.Element) -> Disk:
    source = elem.find("source")
    path: str | None = None
    if source is not None:
        pool, volume = source.get("pool"), source.get("volume")
        if pool and volume:
            path = f"{pool}/{volume}"
        else:
            path = source.get("file") or source.get("dev") or source.get("name") or None
    target = elem.find("target")
    driver = elem.find("driver")
    return Disk(
        target=(target.get("dev") if target is not None else None) or "?",
        source=path,
        device=elem.get("device", "disk"),
        read_only=elem.find("readonly") is not None,
        shareable=elem.find("shareable") is not None,
        format=(driver.get("type") if driver is not None else None) or None,
        bus=(target.get("bus") if target is not None else None) or None,
    )


def _nic(elem: ET.Element) -> Nic:
    mac = elem.find("mac")
    source = elem.find("source")
    network: str | None = None
    if source is not None:
        network = source.get("network") or source.get("bridge") or source.get("dev") or None
    model = elem.find("model")
    return Nic(
        mac=mac.get("address") if mac is not None else None,
        network=network,
        model=model.get("type") if model is not None else None,
    )


def host_cpu(capabilities_xml: str) -> tuple[str | None, tuple[str, ...]]:
    try:
        root = ET.fromstring(capabilities_xml)  # noqa: S314 - from our own libvirt connection
    except ET.ParseError as exc:
        raise ParseError(f"capabilities XML: {exc}") from None
    model = _text(root.find("host/cpu/model"))
    flags = tuple(name for elem in root.iterfind("host/cpu/feature") if (name := elem.get("name")))
    return model, flags
