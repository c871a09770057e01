"""A VM with every field set to something of its own, for code that copies VMs by hand."""

from __future__ import annotations

import dataclasses

from ovmtui.model import Disk, Nic, Vm, VmState

EVERY_FIELD: dict[str, object] = {
    "uuid": "u",
    "name": "n",
    "state": VmState.RUNNING,
    "vcpus": 2,
    "memory_mib": 1024,
    "max_memory_mib": 2048,
    "cpu_time_ns": 5,
    "cpu_percent": 12.5,
    "started_at": 1.5,
    "domain_id": 7,
    "persistent": True,
    "disks": (Disk("xvda", "/OVS/x.img"),),
    "nics": (Nic("00:16:3e:00:00:01", "xenbr0"),),
    "os_type": "xen",
    "config_path": "/OVS/running_pool/n/vm.cfg",
}


def vm_with_every_field() -> Vm:
    # A field added to Vm must be carried by the hand-written copy too
    # (model.vm_with_readings, behind the poller's _with_usage and the Xen backend's
    # _with_row): this dict must then grow.
    assert {f.name for f in dataclasses.fields(Vm)} == set(EVERY_FIELD)
    return Vm(**EVERY_FIELD)  # type: ignore[arg-type]
