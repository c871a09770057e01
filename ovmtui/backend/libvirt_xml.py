"""Pure parsers of libvirt's XML: domain definitions, host capabilities, what a migration needs.

No libvirt import here: these take text and return domain objects, so they are tested on
their own and reused by anything that meets libvirt XML (exported definitions, later).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ovmtui.errors import ParseError
from ovmtui.model import Disk, MigrationNeeds, Nic

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


def xml_text(text: str) -> str:
    """``text`` as XML character data. (xml.sax.saxutils.escape would do, but importing it
    pulls in urllib.request and email: 15-20 ms of every start-up, bench/startup.py.)"""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(text: str) -> str:
    """``text`` as a double-quoted XML attribute value, quotes included (as quoteattr)."""
    escaped = xml_text(text).replace('"', "&quot;")
    return '"' + escaped.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


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


# CPU modes whose guest CPU is the host's own (or the most the host offers): the definition
# names no model to compare, so a target is compared with the source host's CPU instead.
_HOST_CPU_MODES = frozenset({"host-model", "host-passthrough", "maximum"})


def migration_needs(domain_xml: str, host_capabilities_xml: str | None = None) -> MigrationNeeds:
    """What moving the domain needs of a target, from its XML (the live one when it runs).

    ``cpu_definition`` is the domain's ``<cpu>`` element; for ``host-model``,
    ``host-passthrough`` and ``maximum`` guests (whose CPU is the source host's) it is the
    source host's ``<cpu>`` from ``host_capabilities_xml`` instead, which carries an
    ``<arch>`` (libvirt's own mark of a host CPU: ``cpu_is_host`` tells them apart). A
    running ``host-model`` guest's live XML already names its expanded model. None when the
    definition names no CPU (the hypervisor's default model).

    ``disk_paths`` are the disks' sources (files, devices, ``pool/volume`` for volumes,
    ``protocol:name`` for network disks) and the boot files the target's hypervisor opens
    (kernel, initrd, loader, NVRAM). ``host_local`` names only what binds the guest to the
    source machine (device passthrough, host directories and devices): whether a path is
    on the pool's shared storage is the flight plan's check, not decided here.
    Raises ``ParseError``.
    """
    try:
        root = ET.fromstring(domain_xml)  # noqa: S314 - XML from our own libvirt connection
    except ET.ParseError as exc:
        raise ParseError(f"domain XML: {exc}") from None
    if root.tag != "domain":
        raise ParseError(f"domain XML: expected <domain>, found <{root.tag}>")
    os_type = root.find("os/type")
    cpu = root.find("cpu")
    if cpu is not None and cpu.get("mode", "custom") in _HOST_CPU_MODES:
        cpu = _host_cpu_element(host_capabilities_xml)
    elif cpu is not None and cpu.find("model") is None:
        cpu = None  # only topology or NUMA: no model, nothing to compare
    cpu_definition = ET.tostring(cpu, encoding="unicode").strip() if cpu is not None else None
    return MigrationNeeds(
        memory_mib=_memory_mib(root.find("memory")),
        cpu_definition=cpu_definition,
        virt_type=root.get("type") or None,
        arch=os_type.get("arch") if os_type is not None else None,
        cpu_vendor=_text(cpu.find("vendor")) if cpu is not None else None,
        cpu_flags=_required_features(cpu),
        disk_paths=_unique(_disk_paths(root)),
        networks=_unique(_networks(root)),
        host_local=tuple(_host_ties(root)),
    )


def cpu_is_host(cpu_definition: str) -> bool:
    """Whether a ``<cpu>`` describes a host's CPU (capabilities XML, with ``<arch>``) rather
    than a guest's: a host CPU is compared with ``compareCPU``, a guest's with
    ``compareHypervisorCPU``."""
    try:
        root = ET.fromstring(cpu_definition)  # noqa: S314 - made by migration_needs
    except ET.ParseError:
        return False
    return root.tag == "cpu" and root.find("arch") is not None


def _host_cpu_element(capabilities_xml: str | None) -> ET.Element | None:
    if not capabilities_xml:
        return None
    try:
        root = ET.fromstring(capabilities_xml)  # noqa: S314 - from our own libvirt connection
    except ET.ParseError as exc:
        raise ParseError(f"capabilities XML: {exc}") from None
    cpu = root.find("host/cpu")
    if cpu is not None:
        cpu.tail = None
    return cpu


def _required_features(cpu: ET.Element | None) -> tuple[str, ...]:
    if cpu is None:
        return ()
    return tuple(
        name
        for elem in cpu.iterfind("feature")
        # A host CPU's features have no policy: all are there.
        if elem.get("policy", "require") in ("require", "force") and (name := elem.get("name"))
    )


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _disk_paths(root: ET.Element) -> list[str]:
    paths: list[str] = []
    for elem in root.iterfind("devices/disk"):
        source = elem.find("source")
        if source is None:
            continue  # an empty cdrom tray
        pool, volume = source.get("pool"), source.get("volume")
        protocol, name = source.get("protocol"), source.get("name")
        if pool and volume:
            paths.append(f"{pool}/{volume}")
        elif protocol and name:
            paths.append(f"{protocol}:{name}")
        elif path := source.get("file") or source.get("dev") or source.get("dir"):
            paths.append(path)
    # The target's hypervisor opens these too (QEMU reads -kernel even on an incoming run).
    for tag in ("os/kernel", "os/initrd", "os/loader", "os/nvram"):
        if (text := _text(root.find(tag))) is not None:
            paths.append(text)
    return paths


def _networks(root: ET.Element) -> list[str]:
    names: list[str] = []
    for elem in root.iterfind("devices/interface"):
        source = elem.find("source")
        if source is None or elem.get("type") == "hostdev":
            continue  # user networking needs nothing; hostdev NICs are host ties
        if name := source.get("network") or source.get("bridge") or source.get("dev"):
            names.append(name)
    return names


def _pci(address: ET.Element | None) -> str:
    if address is None:
        return "?"
    parts = [address.get(key, "0") for key in ("domain", "bus", "slot", "function")]
    try:
        domain, bus, slot, function = (int(part, 0) for part in parts)
    except ValueError:
        return ":".join(parts)
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"


def _host_ties(root: ET.Element) -> list[str]:
    """What binds the guest to its host, each in the operator's words."""
    ties: list[str] = []
    for elem in root.iterfind("devices/hostdev"):
        kind = elem.get("type", "?")
        source = elem.find("source")
        if kind == "pci":
            address = source.find("address") if source is not None else None
            ties.append(f"PCI passthrough {_pci(address)}")
        elif kind == "usb" and source is not None:
            vendor, product = source.find("vendor"), source.find("product")
            address = source.find("address")
            if vendor is not None and product is not None:
                ties.append(f"USB passthrough {vendor.get('id')}:{product.get('id')}")
            elif address is not None:
                bus, device = address.get("bus"), address.get("device")
                ties.append(f"USB passthrough bus {bus} device {device}")
            else:
                ties.append("USB passthrough")
        elif kind == "mdev" and source is not None:
            address = source.find("address")
            uuid = address.get("uuid") if address is not None else None
            ties.append(f"mediated device {uuid or '?'}")
        else:
            ties.append(f"{kind} device passthrough")
    for elem in root.iterfind("devices/interface[@type='hostdev']"):
        source = elem.find("source")
        address = source.find("address") if source is not None else None
        ties.append(f"NIC passthrough (PCI {_pci(address)})")
    for elem in root.iterfind("devices/filesystem"):
        source = elem.find("source")
        target = elem.find("target")
        where = source.get("dir") if source is not None else None
        mount = target.get("dir") if target is not None else None
        ties.append(f"host directory {where or '?'} shared into the guest as {mount or '?'}")
    for tag in ("serial", "parallel"):
        for elem in root.iterfind(f"devices/{tag}[@type='dev']"):
            source = elem.find("source")
            target = elem.find("target")
            port = target.get("port", "?") if target is not None else "?"
            path = source.get("path") if source is not None else None
            ties.append(f"host device {path or '?'} as {tag} port {port}")
    return ties
