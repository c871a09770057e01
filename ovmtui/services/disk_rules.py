"""The pool's rules for shared disks, as pure functions: who may attach, detach and delete.

A shared disk is a file of the pool's shared storage, ``<shared_storage>/sharedDisk/NAME.img``
(Oracle VM's layout). Its *holders* are the VMs whose disks name that file, read from the
estate snapshot. The rules, each refusal naming its rule in the operator's words:

- ``powered-off``: a disk is attached to (or detached from) a powered-off VM (Oracle VM's
  rule). A running VM only where its host hot-plugs disks and only when the operator asks
  for it explicitly (``--live``): rule ``hot-plug``;
- ``same-pool``: the VM and the disk belong to the same pool;
- ``one-writer``: a disk not marked shareable has one read-write holder and nothing else
  beside it; a disk attached read-write to several VMs is shareable on every one of them
  (Xen mode ``w!``, libvirt ``<shareable/>``), so a holder without that mark is refused a
  companion until it is attached again as shared;
- ``not-held``: a disk is deleted only while no VM holds it, and only when every host of its
  pool answered (a host that does not may hold it without ovmtui knowing).

Nothing here does I/O: the service (``shared_disks.py``) gathers the facts, these judge them,
the table tests hold them to it.
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ovmtui.model import Disk, PlacedVm, VmState

SHARED_DISK_DIR = "sharedDisk"
DISK_SUFFIX = ".img"


class Rule(enum.StrEnum):
    """The rule a refusal is made by (said to the operator and in ``--json``)."""

    POWERED_OFF = "powered-off"
    HOT_PLUG = "hot-plug"
    SAME_POOL = "same-pool"
    ONE_WRITER = "one-writer"
    NOT_HELD = "not-held"
    ATTACHED = "attached"  # attach of a disk the VM holds already / detach of one it does not


RULE_TITLES: dict[Rule, str] = {
    Rule.POWERED_OFF: "the VM must be powered off",
    Rule.HOT_PLUG: "hot-plug only where the host can, and only when asked",
    Rule.SAME_POOL: "the VM and the disk in the same pool",
    Rule.ONE_WRITER: "one read-write holder unless the disk is shareable",
    Rule.NOT_HELD: "no deletion while a VM holds the disk",
    Rule.ATTACHED: "a disk is attached to a VM once",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the rules refuse an action: the rule and the facts, in the operator's words."""

    rule: Rule
    text: str

    def __str__(self) -> str:
        return f"{self.text} (rule: {RULE_TITLES[self.rule]})"


@dataclass(frozen=True, slots=True)
class Holder:
    """One VM holding a shared disk, and how."""

    vm: str
    uuid: str
    pool: str
    host: str
    target: str  # the guest's device name: xvdb, vdb
    read_only: bool
    shareable: bool
    state: VmState

    @property
    def mode(self) -> str:
        """``ro``, ``rw`` or ``rw shared``: how the disk is held, as the screens say it."""
        if self.read_only:
            return "ro"
        return "rw shared" if self.shareable else "rw"


@dataclass(frozen=True, slots=True)
class SharedDisk:
    """A disk of the pool's ``sharedDisk`` folder and who holds it now."""

    name: str
    pool: str
    path: str
    shareable: bool = False  # marked shareable at creation (or held shared already)
    size_bytes: int | None = None
    holders: tuple[Holder, ...] = ()

    @property
    def writers(self) -> tuple[Holder, ...]:
        return tuple(h for h in self.holders if not h.read_only)

    def held_by(self, uuid: str) -> Holder | None:
        return next((h for h in self.holders if h.uuid == uuid), None)


@dataclass(frozen=True, slots=True)
class Attachment:
    """How a disk is attached to one more VM: its device and mode, as the rules decided."""

    target: str
    read_only: bool
    shareable: bool  # Xen ``w!``, libvirt ``<shareable/>`` + ``cache='none'``
    live: bool

    def as_disk(self, path: str) -> Disk:
        return Disk(
            target=self.target,
            source=path,
            read_only=self.read_only,
            shareable=self.shareable,
            format="raw",
        )


_POWERED_OFF = frozenset({VmState.SHUTOFF})
_HOT_PLUGGABLE = frozenset({VmState.RUNNING, VmState.BLOCKED})


def _power_refusal(
    placed: PlacedVm, *, live: bool, hot_plug: str | None, verb: str
) -> Refusal | None:
    """``hot_plug``: why the VM's host cannot hot-plug disks, or None when it can."""
    state = placed.vm.state
    if state in _POWERED_OFF:
        if live:
            return Refusal(
                Rule.HOT_PLUG,
                f"{placed.vm.name} is powered off: a live {verb} is for running VMs "
                "(leave out --live)",
            )
        return None
    if state not in _HOT_PLUGGABLE:
        return Refusal(
            Rule.POWERED_OFF,
            f"{placed.vm.name} is {state.value}: power it off first "
            f"(a disk is {verb}ed to a powered-off VM)",
        )
    if not live:
        return Refusal(
            Rule.POWERED_OFF,
            f"{placed.vm.name} is {state.value}: power it off first, "
            + (
                f"or ask for a hot-plug explicitly (--live) since {placed.host} can"
                if hot_plug is None
                else f"({placed.host} cannot hot-plug: {hot_plug})"
            ),
        )
    if hot_plug is not None:
        return Refusal(
            Rule.HOT_PLUG,
            f"{placed.vm.name} is running and {placed.host} cannot hot-plug disks: {hot_plug}",
        )
    return None


def attach_refusal(
    disk: SharedDisk,
    placed: PlacedVm,
    *,
    read_only: bool,
    live: bool,
    hot_plug: str | None,
) -> Refusal | None:
    """Why ``disk`` may not be attached to ``placed`` now, or None."""
    if placed.pool != disk.pool:
        return Refusal(
            Rule.SAME_POOL,
            f"{placed.vm.name} is in pool {placed.pool} and {disk.name} in pool {disk.pool}: "
            "a VM takes shared disks of its own pool only",
        )
    held = disk.held_by(placed.uuid)
    if held is not None:
        return Refusal(
            Rule.ATTACHED,
            f"{placed.vm.name} holds {disk.name} already (as {held.target}, {held.mode})",
        )
    power = _power_refusal(placed, live=live, hot_plug=hot_plug, verb="attach")
    if power is not None:
        return power
    return _writer_refusal(disk, placed, read_only=read_only)


def _writer_refusal(disk: SharedDisk, placed: PlacedVm, *, read_only: bool) -> Refusal | None:
    others = [h for h in disk.holders if h.uuid != placed.uuid]
    if not others:
        return None
    writers = [h for h in others if not h.read_only]
    if not disk.shareable:
        if writers:
            names = ", ".join(f"{h.vm} ({h.mode})" for h in writers)
            return Refusal(
                Rule.ONE_WRITER,
                f"{disk.name} is not shareable and {names} holds it read-write: a second "
                f"holder would corrupt it (create the disk as shareable for a cluster)",
            )
        if not read_only:
            names = ", ".join(h.vm for h in others)
            return Refusal(
                Rule.ONE_WRITER,
                f"{disk.name} is not shareable and {names} reads it: a writer beside "
                "them would corrupt what they read (attach it read-only)",
            )
        return None
    unshared = [h for h in writers if not h.shareable]
    if unshared:
        names = ", ".join(h.vm for h in unshared)
        return Refusal(
            Rule.ONE_WRITER,
            f"{names} holds {disk.name} read-write without sharing it: a disk written by "
            "several VMs is shareable on every one of them (detach it there and attach "
            "it again)",
        )
    return None


def attachment(
    disk: SharedDisk, placed: PlacedVm, *, read_only: bool, live: bool, prefix: str
) -> Attachment:
    """The device and mode of a new attachment (the rules having allowed it): the VM's next
    free device of ``prefix`` (``xvd``, ``vd``), shareable whenever the disk is."""
    return Attachment(
        target=next_target(placed.vm.disks, prefix),
        read_only=read_only,
        shareable=disk.shareable and not read_only,
        live=live,
    )


def detach_refusal(
    disk: SharedDisk, placed: PlacedVm, *, live: bool, hot_plug: str | None
) -> Refusal | None:
    """Why ``disk`` may not be detached from ``placed`` now, or None."""
    if disk.held_by(placed.uuid) is None:
        return Refusal(Rule.ATTACHED, f"{placed.vm.name} does not hold {disk.name}")
    return _power_refusal(placed, live=live, hot_plug=hot_plug, verb="detach")


def delete_refusal(disk: SharedDisk, *, silent_hosts: Sequence[str] = ()) -> Refusal | None:
    """Why ``disk`` may not be deleted now, or None. ``silent_hosts``: hosts of its pool that
    do not answer, whose VMs may hold it unseen."""
    if disk.holders:
        names = ", ".join(f"{h.vm} ({h.mode}, {h.state.value})" for h in disk.holders)
        return Refusal(Rule.NOT_HELD, f"{disk.name} is held by {names}: detach it first")
    if silent_hosts:
        return Refusal(
            Rule.NOT_HELD,
            f"{', '.join(silent_hosts)} of pool {disk.pool} "
            f"{'does' if len(silent_hosts) == 1 else 'do'} not answer: their VMs may hold "
            f"{disk.name}",
        )
    return None


def next_target(disks: Iterable[Disk], prefix: str) -> str:
    """The first device name of ``prefix`` + a letter the VM does not use (``xvda`` stays the
    boot disk's: the search starts at ``b``)."""
    used = {d.target for d in disks}
    for letter in string.ascii_lowercase[1:]:
        if prefix + letter not in used:
            return prefix + letter
    for first in string.ascii_lowercase:
        for second in string.ascii_lowercase:
            if prefix + first + second not in used:
                return prefix + first + second
    raise ValueError(f"no free {prefix}* device")


# -- the operator's input -----------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SIZE = re.compile(r"(\d+)\s*([KMGT])?(?:i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MIN_SIZE_BYTES = 1024**2  # a shared disk smaller than 1 MiB is a typo


class BadInput(ValueError):
    """What the operator typed cannot be used (exit 2)."""


def disk_name(text: str) -> str:
    """A shared disk's name as typed (``quorum``, ``quorum.img``), checked: letters, digits,
    ``_``, ``.``, ``-``; no ``/``, no ``..``, no shell characters. Returns it without
    ``.img``."""
    name = text.strip()
    if name.endswith(DISK_SUFFIX):
        name = name[: -len(DISK_SUFFIX)]
    if not name or _NAME.fullmatch(name) is None or ".." in name:
        raise BadInput(
            f"{text!r} is not a disk name: use letters, digits, '_', '.' and '-' (up to 64, "
            "starting with a letter or digit; no '/', '..', spaces or shell characters)"
        )
    return name


def disk_size(text: str) -> int:
    """Bytes of a size as typed: ``10G``, ``512M``, ``1T``, ``2GiB``, ``1048576``."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise BadInput(f"{text!r} is not a size: write it like 10G, 512M or 1T")
    size = int(match.group(1)) * _UNITS[(match.group(2) or "").upper()]
    if size < MIN_SIZE_BYTES:
        raise BadInput(f"{text!r} is smaller than 1 MiB: too small for a shared disk")
    return size


def disk_path(shared_storage: str, name: str) -> str:
    """``<shared_storage>/sharedDisk/<name>.img``."""
    return f"{shared_storage.rstrip('/')}/{SHARED_DISK_DIR}/{name}{DISK_SUFFIX}"


def holders_of(path: str, vms: Iterable[PlacedVm]) -> tuple[Holder, ...]:
    """Every VM whose disks name ``path``, as the snapshot says (once a VM: Xen hosts of a
    pool all list its powered-off VMs from their shared vm.cfg files)."""
    found: list[Holder] = []
    seen: set[str] = set()
    for placed in vms:
        if placed.uuid in seen:
            continue
        seen.add(placed.uuid)
        for disk in placed.vm.disks:
            if disk.source == path:
                found.append(
                    Holder(
                        vm=placed.vm.name,
                        uuid=placed.uuid,
                        pool=placed.pool,
                        host=placed.host,
                        target=disk.target,
                        read_only=disk.read_only,
                        shareable=disk.shareable,
                        state=placed.vm.state,
                    )
                )
    return tuple(found)
