"""Shared pieces of the benchmark scripts: estates, synthetic snapshots, timing and reporting.

Every script prints medians over several repetitions and ratios against a baseline measured
in the same run, then one PASS/FAIL line per target. A failed target is a finding, not an
error: the scripts always exit 0.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import statistics
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ovmtui.model import (  # noqa: E402 - after the sys.path fix above
    EstateDelta,
    EstateSnapshot,
    HostFacts,
    HostKey,
    HostRole,
    HostStatus,
    PlacedVm,
    Vm,
    VmState,
)

SIZE = (160, 50)  # the terminal every UI figure is measured in

# virDomainState values, as <test:runstate> takes them.
RUNNING, PAUSED, SHUTOFF = 1, 3, 5

# --------------------------------------------------------------------------- reporting


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def title(text: str) -> None:
    print(f"\n== {text}")


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>11}" + (f"   {note}" if note else ""))


def verdict(name: str, ok: bool, detail: str) -> bool:
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def header(script: str, reps: int, what: str = "repetitions") -> None:
    print(f"{script}: medians of {reps} {what}; Python {sys.version.split()[0]}")


# --------------------------------------------------------------------------- libvirt estates


def vm_uuid(host: int, vm: int) -> str:
    return f"0b0b{host:04x}-0000-4000-8000-{vm:012x}"


def vm_name(host: int, vm: int) -> str:
    return f"vm-h{host:03d}-{vm:04d}"


def _state_of(vm: int) -> int:
    # 80 % running, 15 % shut off, 5 % paused, spread evenly over the node.
    slot = vm % 20
    return SHUTOFF if slot < 3 else PAUSED if slot == 3 else RUNNING


def node_xml(host: int, vms: int) -> str:
    """A libvirt test-driver node with `vms` domains, deterministic and fairly realistic."""
    parts = [
        "<?xml version='1.0'?>\n<node>\n"
        "  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>2</sockets>"
        "<cores>16</cores><threads>2</threads></cpu>\n"
        "  <memory>1073741824</memory>\n"
    ]
    for index in range(vms):
        name = vm_name(host, index)
        mib = 1024 * (1 + index % 8)
        parts.append(
            "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
            f"    <name>{name}</name>\n"
            f"    <uuid>{vm_uuid(host, index)}</uuid>\n"
            f"    <memory unit='MiB'>{mib}</memory>\n"
            f"    <currentMemory unit='MiB'>{mib}</currentMemory>\n"
            f"    <vcpu>{1 + index % 4}</vcpu>\n"
            "    <os><type arch='x86_64'>hvm</type></os>\n"
            "    <devices>\n"
            "      <disk type='file' device='disk'>\n"
            f"        <source file='/OVS/running_pool/{name}/System.img'/>\n"
            "        <target dev='xvda' bus='xen'/>\n"
            "      </disk>\n"
            "      <interface type='bridge'>\n"
            f"        <mac address='00:16:3e:{host % 256:02x}:{index // 256:02x}:"
            f"{index % 256:02x}'/>\n"
            "        <source bridge='xenbr0'/>\n"
            "      </interface>\n"
            "    </devices>\n"
            f"    <test:runstate>{_state_of(index)}</test:runstate>\n"
            "  </domain>\n"
        )
    parts.append("</node>\n")
    return "".join(parts)


def write_estate(directory: Path, hosts: int, vms_per_host: int) -> list[tuple[HostKey, str]]:
    """Write one node file per host; returns each host's key and test:/// URI."""
    out = []
    for host in range(hosts):
        path = directory / f"host{host:03d}.xml"
        path.write_text(node_xml(host, vms_per_host), encoding="utf-8")
        uri = "test://" + urllib.parse.quote(str(path), safe="/")
        out.append((HostKey(f"pool{host // 10:02d}", f"host{host:03d}"), uri))
    return out


def libvirt_backends(hosts: Sequence[tuple[HostKey, str]]) -> list[Any]:
    from ovmtui.backend.libvirt import LibvirtBackend

    return [LibvirtBackend(key, uri) for key, uri in hosts]


# --------------------------------------------------------------------------- snapshots

_STATES = (VmState.RUNNING, VmState.SHUTOFF, VmState.PAUSED)
_NOW = time.time()


def synthetic_snapshot(vms: int, vms_per_host: int = 100) -> EstateSnapshot:
    """An estate of `vms` VMs built from model objects, as a first poll would publish it."""
    hosts = []
    for host in range(max(1, vms // vms_per_host)):
        states = [_state_of(i) for i in range(vms_per_host)]
        host_vms = tuple(
            Vm(
                uuid=vm_uuid(host, i),
                name=vm_name(host, i),
                state={RUNNING: VmState.RUNNING, PAUSED: VmState.PAUSED}.get(
                    states[i], VmState.SHUTOFF
                ),
                vcpus=1 + i % 4,
                memory_mib=1024 * (1 + i % 8),
                max_memory_mib=1024 * (1 + i % 8),
                cpu_percent=float(i % 50) if states[i] == RUNNING else None,
                started_at=_NOW - 3600 * (1 + i % 100) if states[i] != SHUTOFF else None,
                domain_id=i + 1 if states[i] != SHUTOFF else None,
            )
            for i in range(vms_per_host)
        )
        hosts.append(
            HostStatus(
                pool=f"pool{host // 10:02d}",
                name=f"host{host:03d}",
                address=f"qemu+ssh://host{host:03d}/system",
                roles=(HostRole.VM,),
                facts=HostFacts(cpus=64, memory_mib=1024 * 1024, hypervisor="QEMU"),
                vms=host_vms,
                taken_at=_NOW,
                reachable=True,
            )
        )
    pools = tuple(dict.fromkeys(h.pool for h in hosts))
    return EstateSnapshot(hosts=tuple(hosts), generation=1, taken_at=_NOW, pools=pools)


def next_snapshot(
    snapshot: EstateSnapshot, fraction: float, rng: random.Random, flip: bool = True
) -> EstateSnapshot:
    """The poller's next snapshot: every host re-polled, `fraction` of the VMs changed.

    As in `EstatePoller._publish`: a new generation, each host's `taken_at` moved on (so
    every host is in `delta.hosts`), and the changed VMs in `delta.changed`. A changed VM
    swaps running and paused (its CPU % changes with it), so a refresh never moves rows in
    the default name order but does repaint them.
    """
    total = sum(len(h.vms) for h in snapshot.hosts)
    count = round(total * fraction)
    chosen = set(rng.sample(range(total), count)) if count else set()
    taken_at = snapshot.taken_at + 5.0
    hosts, changed, index = [], [], 0
    for host in snapshot.hosts:
        vms = list(host.vms)
        for position, vm in enumerate(vms):
            if index + position in chosen:
                vms[position] = vm = _flipped(vm) if flip else vm
                changed.append(PlacedVm(host.pool, host.name, vm))
        index += len(vms)
        hosts.append(dataclasses.replace(host, vms=tuple(vms), taken_at=taken_at))
    delta = EstateDelta(
        since=snapshot.generation,
        changed=tuple(changed),
        hosts=tuple(sorted(h.key for h in hosts)),
    )
    return EstateSnapshot(
        hosts=tuple(hosts),
        generation=snapshot.generation + 1,
        taken_at=taken_at,
        delta=delta,
        pools=snapshot.pools,
    )


def _flipped(vm: Vm) -> Vm:
    if vm.state is VmState.RUNNING:
        return dataclasses.replace(vm, state=VmState.PAUSED, cpu_percent=None)
    if vm.state is VmState.PAUSED:
        return dataclasses.replace(vm, state=VmState.RUNNING, cpu_percent=12.5)
    return dataclasses.replace(vm, state=VmState.RUNNING, started_at=_NOW, cpu_percent=3.0)


# --------------------------------------------------------------------------- the UI


def bench_app_class(base: type[Any]) -> type[Any]:
    """`base` with painting completed as on a real terminal, and paints time-stamped.

    Headless, Textual renders the compositor update but skips turning it into terminal
    escape sequences; a real terminal pays for that, so it is done (and thrown away) here.
    `last_paint` is the `perf_counter()` when the last paint finished.
    """
    from textual._compositor import CompositorUpdate

    class Painting(base):  # type: ignore[misc, valid-type]
        last_paint = 0.0
        paints = 0

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            if isinstance(renderable, CompositorUpdate) and self.is_headless:
                renderable.render_segments(self.console)
            if renderable is not None:
                self.last_paint = time.perf_counter()
                self.paints += 1

    Painting.__name__ = base.__name__
    return Painting


async def settle(pilot: Any) -> None:
    """Let the app process everything pending and paint (Pilot.pause forces the paint)."""
    await pilot.pause()


async def timed_ui(pilot: Any, work: Any) -> tuple[float, float]:
    """(UI-thread CPU seconds, wall seconds to the last paint) of `work()` until painted.

    CPU time of the loop thread is the UI work itself: it ignores the idle sleep with which
    `Pilot.pause` detects that the app settled, and preemption by other processes.
    """
    app = pilot.app
    gc.collect()  # leftovers of earlier repetitions are not this refresh's work
    paints = app.paints
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    work()
    await settle(pilot)
    cpu = time.thread_time() - cpu0
    wall = app.last_paint - wall0 if app.paints != paints else float("nan")
    return cpu, wall
