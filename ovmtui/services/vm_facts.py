"""One VM's facts as its screen and ``ovmtui show`` give them: pure, from the snapshot.

Both faces read the same rows from here, so the words and the units on the screen and in a
shell never differ; ``vm_json`` is the shape of ``ovmtui show --json``. What a host did not
report stays unknown ("—" on screen, null in JSON): nothing is guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ovmtui import format as fmt
from ovmtui.model import Disk, PlacedVm, Vm, on_shared_storage, uptime_s

DISK_COLUMNS = ("target", "device", "source", "size", "format", "bus", "access", "shared storage")
NIC_COLUMNS = ("MAC", "bridge / network", "model")


def _yes_no(value: bool | None) -> str:
    return fmt.UNKNOWN if value is None else ("yes" if value else "no")


def summary_rows(placed: PlacedVm, now: float) -> list[tuple[str, str]]:
    """(label, value) of the VM's state, place and sizes, in the order they are shown."""
    vm = placed.vm
    return [
        ("State", vm.state.value),
        ("Host", placed.host),
        ("Pool", placed.pool),
        ("UUID", vm.uuid),
        ("Domain id", fmt.count(vm.domain_id)),
        ("vCPUs", fmt.count(vm.vcpus)),
        ("Memory", f"{fmt.mib(vm.memory_mib)} / {fmt.mib(vm.max_memory_mib)}"),
        ("CPU %", fmt.percent(vm.cpu_percent)),
        ("Uptime", fmt.uptime(uptime_s(vm, now))),
    ]


def access(disk: Disk) -> str:
    """``ro`` or ``rw``, and ``shareable`` when several VMs may write it at once."""
    mode = "ro" if disk.read_only else "rw"
    return f"{mode} shareable" if disk.shareable else mode


def with_disk_sizes(vm: Vm, sizes: Mapping[str, int | None]) -> Vm:
    """``vm`` with the sizes its host measured (by disk target) on its disks."""
    if not sizes:
        return vm
    disks = tuple(
        dataclasses.replace(disk, size_bytes=sizes[disk.target])
        if sizes.get(disk.target) is not None
        else disk
        for disk in vm.disks
    )
    return dataclasses.replace(vm, disks=disks)


def disk_rows(vm: Vm, shared_storage: str | None) -> list[tuple[str, ...]]:
    """One row a disk, in ``DISK_COLUMNS`` order."""
    return [
        (
            disk.target,
            disk.device,
            disk.source or fmt.UNKNOWN,
            fmt.size(disk.size_bytes),
            disk.format or fmt.UNKNOWN,
            disk.bus or fmt.UNKNOWN,
            access(disk),
            _yes_no(on_shared_storage(disk.source, shared_storage)),
        )
        for disk in vm.disks
    ]


def nic_rows(vm: Vm) -> list[tuple[str, ...]]:
    """One row a NIC, in ``NIC_COLUMNS`` order."""
    return [
        (nic.mac or fmt.UNKNOWN, nic.network or fmt.UNKNOWN, nic.model or fmt.UNKNOWN)
        for nic in vm.nics
    ]


def vm_json(
    placed: PlacedVm, *, shared_storage: str | None, definition: str | None, now: float
) -> dict[str, Any]:
    """The VM as ``ovmtui show --json`` prints it; null for whatever is not known."""
    vm = placed.vm
    return {
        "vm": vm.name,
        "uuid": vm.uuid,
        "pool": placed.pool,
        "host": placed.host,
        "state": vm.state.value,
        "domain_id": vm.domain_id,
        "vcpus": vm.vcpus,
        "memory_mib": vm.memory_mib,
        "max_memory_mib": vm.max_memory_mib,
        "cpu_percent": vm.cpu_percent,
        "uptime_s": uptime_s(vm, now),
        "disks": [
            {
                "target": disk.target,
                "source": disk.source,
                "device": disk.device,
                "format": disk.format,
                "bus": disk.bus,
                "size_bytes": disk.size_bytes,
                "read_only": disk.read_only,
                "shareable": disk.shareable,
                "on_shared_storage": on_shared_storage(disk.source, shared_storage),
            }
            for disk in vm.disks
        ],
        "nics": [{"mac": nic.mac, "network": nic.network, "model": nic.model} for nic in vm.nics],
        "definition": definition,
    }
