"""Details of one host: what it is, what it holds, and how fresh that knowledge is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from textual.content import Content
from textual.widgets import Static

from ovmtui import format as fmt
from ovmtui.model import HostStatus, VmState
from ovmtui.terminal import ascii_content, ascii_only
from ovmtui.widgets.state_style import HOST_STATE_STYLES, HostState, markup

_UP, _UNKNOWN, _DOWN = markup(HostState.UP), markup(HostState.UNKNOWN), markup(HostState.DOWN)
# The panel's left edge takes the colour of the host's state when it is not plainly up.
_EDGES: Final = (
    ("-unreachable", HOST_STATE_STYLES[HostState.DOWN].colour),
    ("-stale", HOST_STATE_STYLES[HostState.UNKNOWN].colour),
)


class HostPanel(Static):
    """Renders a ``HostStatus``; the age line is redrawn every second."""

    DEFAULT_CSS = """
    HostPanel {
        height: 15;
        overflow: hidden;
        padding: 0 1;
    }
    """ + "".join(
        f"HostPanel.{name} {{ border-left: thick {colour}; }}\n"
        # A terminal that cannot show Unicode: the same edge, drawn in ASCII.
        f".-ascii HostPanel.{name} {{ border-left: ascii {colour}; }}\n"
        for name, colour in _EDGES
    )

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._clock = clock
        self._host: HostStatus | None = None
        self._shown: Content | None = None
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._redraw)

    def show_host(self, host: HostStatus | None) -> None:
        if host is self._host:
            return
        self._host = host
        self._redraw()

    @property
    def host(self) -> HostStatus | None:
        return self._host

    def _redraw(self) -> None:
        host = self._host
        self.set_class(host is not None and host.reachable is False, "-unreachable")
        self.set_class(host is not None and host.stale and host.reachable is not False, "-stale")
        content = render_host(host, self._clock())
        if self._ascii:
            content = ascii_content(content)  # "—" for unknowns, and whatever a host sent
        if content != self._shown:
            self._shown = content
            self.update(content, layout=False)  # fixed height: no layout pass needed


def render_host(host: HostStatus | None, now: float) -> Content:
    if host is None:
        return Content.from_markup("[$text-muted]Select a host in the tree.[/]")
    facts = host.facts
    lines: list[Content] = [
        Content.from_markup("[b]$name[/b] [$text-muted]$pool[/]", name=host.name, pool=host.pool)
    ]
    if host.roles:
        lines.append(_row("roles", ", ".join(r.value for r in host.roles)))
    lines.append(_row("address", host.address))
    if host.reachable is False:
        lines.append(Content.from_markup(f"[{_DOWN}]unreachable[/] $error", error=host.error or ""))
    elif host.reachable is None:
        lines.append(Content.from_markup(f"[{_UNKNOWN}]not polled yet[/]"))
    else:
        lines.append(Content.from_markup(f"[{_UP}]reachable[/]"))
    age = host.age_s(now)
    label = "data age" if not host.stale else "last known"
    lines.append(_row(label, "never" if age is None else fmt.duration(age) + " ago"))
    if facts is not None:
        hyp = " ".join(v for v in (facts.hypervisor, facts.hypervisor_version) if v)
        lines.append(_row("hypervisor", hyp or fmt.UNKNOWN))
        lines.append(_row("cpu", facts.cpu_model or fmt.UNKNOWN))
        topo = ""
        if facts.sockets and facts.cores_per_socket and facts.threads_per_core:
            topo = f" ({facts.sockets}x{facts.cores_per_socket}x{facts.threads_per_core})"
        lines.append(_row("cpus", fmt.count(facts.cpus) + topo))
        lines.append(_row("memory", fmt.mib(facts.memory_mib)))
        lines.append(_row("free", fmt.mib(facts.free_memory_mib)))
    running = sum(1 for vm in host.vms if vm.state is VmState.RUNNING)
    committed = sum(vm.memory_mib or 0 for vm in host.vms if vm.state.is_active)
    lines.append(_row("VMs", f"{len(host.vms)} ({running} running)"))
    lines.append(_row("committed", fmt.mib(committed)))
    if host.warnings:
        more = f" (+{len(host.warnings) - 1} more)" if len(host.warnings) > 1 else ""
        lines.append(
            Content.from_markup(
                "[$warning b]unread output[/] $first$more", first=host.warnings[0], more=more
            )
        )
    return Content("\n").join(lines)


def _row(label: str, value: str) -> Content:
    return Content.from_markup("[$text-muted]$label[/] $value", label=f"{label:<10}", value=value)
