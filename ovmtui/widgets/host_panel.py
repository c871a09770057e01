"""Details of one host: what it is, what it holds, and how fresh that knowledge is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from textual.content import Content
from textual.widgets import Static

from ovmtui import format as fmt
from ovmtui.model import HostStatus, Vm, VmState
from ovmtui.terminal import ascii_content, ascii_only
from ovmtui.widgets.data_age import OLD_AFTER_S, OLD_STYLE, DataAge, data_age
from ovmtui.widgets.state_style import HOST_STATE_STYLES, HostState, markup

_UP, _UNKNOWN, _DOWN = markup(HostState.UP), markup(HostState.UNKNOWN), markup(HostState.DOWN)
# The panel's left edge takes the colour of the host's state when it is not plainly up.
_EDGES: Final = (
    ("-unreachable", HOST_STATE_STYLES[HostState.DOWN].colour),
    ("-stale", HOST_STATE_STYLES[HostState.UNKNOWN].colour),
)


class HostPanel(Static):
    """Renders a ``HostStatus``: again when the host changes, and when its age, checked
    every second, would read otherwise (see `data_age`)."""

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

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        old_after_s: float = OLD_AFTER_S,
        id: str | None = None,
    ) -> None:
        super().__init__("", id=id)
        self._clock = clock
        self._old_after_s = old_after_s
        self._host: HostStatus | None = None
        self._shown: Content | None = None
        self._age_shown: DataAge | None = None
        self._tally = VmTally()
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def show_host(self, host: HostStatus | None) -> None:
        if host is self._host:
            return
        self._host = host
        self._redraw()

    @property
    def host(self) -> HostStatus | None:
        return self._host

    def _age(self, now: float) -> DataAge | None:
        host = self._host
        if host is None or host.taken_at is None:
            return None
        return data_age(now - host.taken_at, self._old_after_s)

    def _tick(self) -> None:
        # Nothing is built while the age reads as it did: at the default interval a
        # healthy host's reads "just now" from one poll to the next.
        if self._age(self._clock()) != self._age_shown:
            self._redraw()

    def _redraw(self) -> None:
        host, now = self._host, self._clock()
        self._age_shown = self._age(now)
        self.set_class(host is not None and host.reachable is False, "-unreachable")
        self.set_class(host is not None and host.stale and host.reachable is not False, "-stale")
        content = render_host(host, now, old_after_s=self._old_after_s, tally=self._tally)
        if self._ascii:
            content = ascii_content(content)  # "—" for unknowns, and whatever a host sent
        if content != self._shown:
            self._shown = content
            self.update(content, layout=False)  # fixed height: no layout pass needed


class VmTally:
    """A host's running VMs and committed memory, counted once per VM tuple.

    5-8 ms at 10,000 VMs. A host whose VMs did not change keeps the very tuple from one
    poll to the next (the poller's quick path), so the count is kept by identity.
    """

    def __init__(self) -> None:
        self._vms: tuple[Vm, ...] | None = None
        self._counts = (0, 0)

    def counts(self, vms: tuple[Vm, ...]) -> tuple[int, int]:
        """(running VMs, MiB committed to the active ones)."""
        if vms is not self._vms:
            self._counts = count_vms(vms)
            self._vms = vms  # held, so that its id cannot be reused by another tuple
        return self._counts


def count_vms(vms: tuple[Vm, ...]) -> tuple[int, int]:
    running = sum(1 for vm in vms if vm.state is VmState.RUNNING)
    committed = sum(vm.memory_mib or 0 for vm in vms if vm.state.is_active)
    return running, committed


def render_host(
    host: HostStatus | None,
    now: float,
    *,
    old_after_s: float = OLD_AFTER_S,
    tally: VmTally | None = None,
) -> Content:
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
    label = "data age" if not host.stale else "last known"
    if host.taken_at is None:
        lines.append(_row(label, "never"))
    else:
        age = data_age(now - host.taken_at, old_after_s)
        lines.append(_row(label, age.text, OLD_STYLE if age.old else None))
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
    running, committed = count_vms(host.vms) if tally is None else tally.counts(host.vms)
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


def _row(label: str, value: str, style: str | None = None) -> Content:
    shown = "$value" if style is None else f"[{style}]$value[/]"
    return Content.from_markup(f"[$text-muted]$label[/] {shown}", label=f"{label:<10}", value=value)
