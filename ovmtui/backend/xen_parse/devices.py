"""The notations of disks and NICs that xm and xl share, in listings and in configurations.

A disk's ``uname`` (``file:/img``, ``phy:/dev/x``, ``tap:aio:/img``), its device
(``xvda:disk``, ``hdc:cdrom``, ``ioemu:hda``) and mode (``r``, ``w``, ``w!``), a config's
disk entry (xm ``file:/img,xvda,w`` or xl ``vdev=..,target=..``) and vif entry
(``mac=..,bridge=..``). Read here for the listings and the vm.cfg reader; a vm.cfg writer
writes them in the same grammar.
"""

from __future__ import annotations

from ovmtui.backend.xen_parse.common import _mac
from ovmtui.model import Disk, Nic

# Driver prefixes of a disk's "uname": file:, phy:, tap:aio:, tap:qcow:, tap2:tapdisk:vhd: ...
_DISK_DRIVERS = frozenset(
    {"file", "phy", "tap", "tap2", "tapdisk", "tapdisk2", "aio", "sync", "ram"}
    | {"qcow", "qcow2", "vhd", "vmdk", "raw", "qed"}
)
_DISK_FORMATS = frozenset({"raw", "qcow", "qcow2", "vhd", "qed", "empty"})
_DISK_DEVICES = frozenset({"disk", "cdrom", "floppy"})


def _disk_source(uname: str) -> str | None:
    """The path or device of a disk, without the driver prefixes (``tap:aio:/x`` -> ``/x``).

    An unknown prefix (``drbd:``, ``rbd:``, ``iscsi:``) names the storage itself: kept.
    """
    rest = uname.strip()
    stripped = False
    while True:
        head, sep, tail = rest.partition(":")
        if not sep or head.lower() not in _DISK_DRIVERS:
            break
        rest, stripped = tail, True
    if stripped and rest.startswith("//"):
        rest = "/" + rest.lstrip("/")  # file:///img is the URL spelling of file:/img
    return rest or None


def _disk_target(dev: str) -> tuple[str, str]:
    """``xvda:disk`` -> (xvda, disk); ``hdc:cdrom`` -> (hdc, cdrom); ``ioemu:hda`` -> hda."""
    parts = [part for part in dev.strip().split(":") if part]
    device = "disk"
    if len(parts) > 1 and parts[-1].lower() in _DISK_DEVICES:
        device = parts.pop().lower()
    if len(parts) > 1 and parts[0].lower() == "ioemu":
        parts.pop(0)
    return ":".join(parts), device


def _disk_mode(mode: str) -> tuple[bool, bool]:
    """(read_only, shareable) of an xm mode: r, ro, w, rw, w! (writable by several)."""
    text = mode.strip().lower()
    read_only = text.startswith("r") and not text.startswith("rw")
    return read_only, "!" in text


def _disk(
    dev: str,
    uname: str | None,
    read_only: bool,
    shareable: bool,
    *,
    cdrom: bool,
    disk_format: str | None = None,
) -> Disk:
    """A disk from its device (``xvda:disk``) and ``uname`` (``tap:aio:/img``), listed or
    configured alike; ``cdrom`` when the listing or config says so apart from the device;
    ``disk_format`` only when the config names it (xl's ``format=``)."""
    target, device = _disk_target(dev)
    return Disk(
        target=target,
        source=_disk_source(uname) if uname else None,
        device="cdrom" if cdrom else device,
        read_only=read_only,
        shareable=shareable,
        format=disk_format,
    )


_XL_DISK_KEYS = frozenset(
    {"target", "format", "vdev", "access", "devtype", "backendtype", "backend", "script"}
    | {"direct-io-safe", "discard", "no-discard", "specification", "trusted", "untrusted"}
)


def _disk_from_spec(spec: str) -> Disk | None:
    """A disk of a config: xm ``file:/img,xvda:cdrom,r`` or xl ``vdev=..,target=..``."""
    items = spec.split(",")
    while items and not items[-1].strip():
        items.pop()  # a trailing comma is no empty column
    keyed: dict[str, str] = {}
    positional: list[str] = []
    for index, item in enumerate(items):
        text = item.strip()
        key, eq, value = text.partition("=")
        key = key.strip().lower()
        if eq and key in _XL_DISK_KEYS:
            if key == "target":  # xl: target= takes the rest of the spec, commas and all
                keyed[key] = ",".join([value, *items[index + 1 :]]).strip()
                break
            keyed[key] = value.strip()
        elif text.lower() == "cdrom":
            keyed["devtype"] = "cdrom"
        else:
            positional.append(text)
    target = vdev = access = disk_format = None
    if len(positional) >= 4 or (
        len(positional) == 3 and positional[1].lower() in _DISK_FORMATS
    ):  # xl: target, format, vdev, access
        target, disk_format, vdev, *rest = positional
        access = rest[0] if rest else None
    elif len(positional) == 3:  # xm: uname, dev, mode
        target, vdev, access = positional
    elif len(positional) == 2:
        target, vdev = positional
    elif positional:
        target = positional[0]
    target = keyed.get("target", target)
    vdev = keyed.get("vdev", vdev)
    access = keyed.get("access", access)
    disk_format = keyed.get("format", disk_format) or None
    if not vdev:
        return None
    read_only, shareable = _disk_mode(access) if access else (False, False)
    cdrom = keyed.get("devtype", "").lower() == "cdrom"
    return _disk(
        vdev,
        target,
        read_only,
        shareable,
        cdrom=cdrom,
        disk_format=disk_format.lower() if disk_format else None,
    )


def _nic_from_spec(spec: str) -> tuple[Nic, list[str]]:
    """A NIC of a config (``mac=..,bridge=..,model=..``) and the settings without a key."""
    settings: dict[str, str] = {}
    keyless: list[str] = []
    for item in spec.split(","):
        text = item.strip()
        if not text:
            continue
        key, eq, value = text.partition("=")
        if eq:
            settings[key.strip().lower()] = value.strip()
        else:
            keyless.append(text)
    nic = Nic(
        mac=_mac(settings.get("mac")),
        network=settings.get("bridge") or None,
        model=settings.get("model") or settings.get("type") or None,
    )
    return nic, keyless
