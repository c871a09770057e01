"""The real dashboard on the lab's estate, read the way an operator reads it: the text of
the VM table's rows and of the estate tree's labels."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot
from textual.widgets import Input

from ovmtui.app import OvmApp
from ovmtui.model import HostStatus
from tests.e2e.lab.conftest import LAB_DIR, Lab
from tests.ui.conftest import dashboard, table, wait_until

SIZE = (140, 40)
# Short, so that "within one refresh" is a tight bound; the lab's hosts answer in
# milliseconds over their SSH connections.
INTERVAL_S = 2.0


def lab_app(lab: Lab, interval_s: float = INTERVAL_S) -> OvmApp:
    # No repository: the tests must not write the lab's (make lab-demo uses it).
    return OvmApp(lab.estate, interval_s=interval_s)


def rows(app: OvmApp) -> list[str]:
    """The VM table's lines as drawn (header first)."""
    vm_table = table(app)
    return [vm_table.render_line(y).text.rstrip() for y in range(vm_table.size.height)]


def row(app: OvmApp, name: str) -> str:
    for line in rows(app):
        if f" {name} " in f" {line} ":
            return line
    return ""


def shown_state(app: OvmApp, name: str) -> str | None:
    cells = row(app, name).split()
    return cells[1] if len(cells) > 1 and cells[0] == name else None


def tree_labels(app: OvmApp) -> list[str]:
    return dashboard(app).estate_tree.labels()[1:]  # pools and hosts, without the root


def host_status(app: OvmApp, name: str) -> HostStatus:
    for host in app.snapshot.hosts:
        if host.name == name:
            return host
    raise KeyError(name)


async def loaded(pilot: Pilot[object], app: OvmApp, vms: int = 3) -> None:
    await wait_until(
        pilot,
        lambda: (
            all(h.reachable for h in app.snapshot.hosts)
            and len(list(app.snapshot.placed_vms())) >= vms
            and table(app).row_count >= vms
        ),
        limit_s=30,
        what="both lab hosts to answer",
    )
    await pilot.pause()


async def focus_vm(pilot: Pilot[object], app: OvmApp, name: str) -> None:
    """Filter down to one VM so that the cursor is on it, as an operator would: / name Enter."""
    await pilot.press("slash")
    dashboard(app).query_one("#filter", Input).value = ""
    await pilot.press(*name, "enter")
    await wait_until(
        pilot,
        lambda: (cursor := table(app).cursor_vm) is not None and cursor.vm.name == name,
        what=f"the cursor on {name}",
    )


async def libvirt_state(host: str, vm: str) -> str:
    """What the host's libvirtd says, asked over its local socket (not the tested path)."""
    socket = LAB_DIR / "hosts" / host / "run" / "libvirt-sock"
    proc = await asyncio.create_subprocess_exec(
        "virsh",
        "-q",
        "-c",
        f"qemu+unix:///system?socket={socket}",
        "domstate",
        vm,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return out.decode().strip()


async def follows(
    pilot: Pilot[object],
    app: OvmApp,
    vm: str,
    host: str,
    *,
    shown: str,
    libvirt: str,
    limit_s: float = 10.0,
    interval_s: float = INTERVAL_S,
) -> float:
    """Wait until libvirt reports `libvirt` for the VM and the table shows `shown`, and
    require the table to follow libvirt within one refresh interval. Returns the lag.

    The guest may take its time (a shutdown waits for it to power off): what is checked is
    how long the dashboard lags behind the hypervisor, not how long the guest takes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    reached: float | None = None
    while True:
        now = loop.time()
        if reached is None and await libvirt_state(host, vm) == libvirt:
            reached = now
        if shown_state(app, vm) == shown:
            lag = 0.0 if reached is None else loop.time() - reached
            assert lag <= interval_s + 0.5, (
                f"{vm} showed {shown} {lag:.2f} s after libvirt said {libvirt!r} "
                f"(more than one refresh of {interval_s:g} s)"
            )
            return lag
        if now > deadline:
            raise AssertionError(
                f"{vm}: libvirt says {await libvirt_state(host, vm)!r}, the table shows "
                f"{row(app, vm)!r}; expected {libvirt!r} / {shown!r} within {limit_s:g} s"
            )
        await pilot.pause(0.05)
