"""The top line: estate totals, the mode, and how fresh the data is."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.content import Content
from textual.widgets import Static

from ovmtui import format as fmt
from ovmtui.model import EstateSnapshot, EstateTotals, TotalsTally
from ovmtui.terminal import ascii_content, ascii_only
from ovmtui.widgets.state_style import HostState, markup

_UP, _UNKNOWN, _DOWN = markup(HostState.UP), markup(HostState.UNKNOWN), markup(HostState.DOWN)


class EstateHeader(Static):
    DEFAULT_CSS = """
    EstateHeader {
        height: 2;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        *,
        read_only: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__("", id=id)
        # Asked at every redraw (once a second): the app may turn read-only while it runs
        # (its repository became unwritable), and the header must say so.
        self._read_only = read_only
        self._clock = clock
        self._snapshot: EstateSnapshot | None = None
        self._totals: EstateTotals | None = None
        self._tally = TotalsTally()
        self._shown: Content | None = None
        self._drifted = 0
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)
        self._bar = Content(" | " if self._ascii else " │ ")
        self._dot = ", " if self._ascii else " · "

    def on_mount(self) -> None:
        self.set_interval(1.0, self._redraw)
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()  # what fits on the first line depends on the width

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        self._snapshot = snapshot
        self._totals = self._tally.totals(snapshot)
        self._redraw()

    def show_drift(self, count: int) -> None:
        self._drifted = count
        self._redraw()

    def _redraw(self) -> None:
        content = self.render_line_content()
        if self._ascii:
            content = ascii_content(content)  # an unknown total ("—"), say
        if content != self._shown:
            self._shown = content
            # Fixed height: no layout pass needed (a full layout of the screen costs more
            # than everything else a refresh does).
            self.update(content, layout=False)

    def render_line_content(self) -> Content:
        """Two lines: the estate at a glance, then the VMs by state.

        In a narrow terminal the memory totals, then the VM count, give way so that the
        hosts and the age of the data stay on the first line.
        """
        first: list[Content] = [Content.from_markup("[b]ovmtui[/b]")]
        if self._read_only():
            first.append(Content.from_markup("[reverse $warning b] READ-ONLY [/]"))
        totals, snapshot = self._totals, self._snapshot
        if totals is None or snapshot is None:
            more = "..." if self._ascii else "…"
            first.append(Content.from_markup(f"[$text-muted]waiting for the first poll{more}[/]"))
            return self._bar.join(first)
        hosts = f"hosts [{_UP}]{totals.hosts_up} up[/]"
        if totals.hosts_down:
            hosts += f" [{_DOWN}]{totals.hosts_down} down[/]"
        if totals.hosts_unknown:
            hosts += f" [{_UNKNOWN}]{totals.hosts_unknown} waiting[/]"
        first.append(Content.from_markup(hosts))
        vm_count = Content(f"{totals.vm_count} VMs")
        memory = Content(
            f"memory {fmt.mib(totals.memory_committed_mib)} committed"
            f" / {fmt.mib(totals.memory_physical_mib)}"
        )
        last = [self._freshness(snapshot)]
        if self._drifted:
            sign = "!" if self._ascii else "⚠"
            last.append(Content.from_markup(f"[$error b]{sign} {self._drifted} in drift (D)[/]"))
        room = self.content_region.width or None  # None: not laid out yet, keep everything
        for optional in ([vm_count, memory], [vm_count], []):
            line = self._bar.join([*first, *optional, *last])
            if room is None or line.cell_length <= room:
                break
        states = []
        for state, n in totals.vms_by_state:
            states.append(f"[{markup(state)}]{n} {state.value}[/]")
        second = Content.from_markup(self._dot.join(states)) if states else Content("no VMs")
        return Content("\n").join([line, second])

    def _freshness(self, snapshot: EstateSnapshot) -> Content:
        now = self._clock()
        ages = [h.age_s(now) for h in snapshot.hosts if h.reachable and not h.stale]
        known = [a for a in ages if a is not None]
        if not known:
            return Content.from_markup("[$warning]no fresh data[/]")
        oldest = max(known)
        text = f"{fmt.duration(oldest)} ago"
        if not self._ascii:
            text = "⟳ " + text
        stale = sum(1 for h in snapshot.hosts if h.stale or h.reachable is False)
        if stale:
            return Content.from_markup(f"[$warning]{text}, {stale} stale[/]")
        return Content(text)
