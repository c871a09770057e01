"""The top line: estate totals, the mode, and how fresh the data is."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.content import Content
from textual.widgets import Static

from ovmtui import format as fmt
from ovmtui.model import EstateSnapshot, EstateTotals, TotalsTally
from ovmtui.roles import master_problems
from ovmtui.terminal import ascii_content, ascii_only
from ovmtui.widgets.data_age import OLD_AFTER_S, OLD_STYLE, DataAge, data_age
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
        old_after_s: float = OLD_AFTER_S,
        id: str | None = None,
    ) -> None:
        super().__init__("", id=id)
        # Asked every second: the app may turn read-only while it runs (its repository
        # became unwritable), and the header must say so.
        self._read_only = read_only
        self._clock = clock
        self._old_after_s = old_after_s
        self._snapshot: EstateSnapshot | None = None
        self._totals: EstateTotals | None = None
        self._tally = TotalsTally()
        # Of the snapshot shown: when its oldest fresh data was taken (None: no fresh
        # data), and how many hosts are stale or unreachable.
        self._oldest: float | None = None
        self._stale = 0
        self._shown: Content | None = None
        # What the one-second tick compares: read-only, and the age as shown.
        self._ticked: tuple[bool, DataAge | None, tuple[str, ...]] | None = None
        self._drifted = 0
        self._moving: tuple[str, ...] = ()
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)
        self._bar = Content(" | " if self._ascii else " │ ")
        self._dot = ", " if self._ascii else " · "

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()  # what fits on the first line depends on the width

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        self._snapshot = snapshot
        self._totals = self._tally.totals(snapshot)
        fresh = [
            h.taken_at
            for h in snapshot.hosts
            if h.reachable and not h.stale and h.taken_at is not None
        ]
        self._oldest = min(fresh) if fresh else None
        self._stale = sum(1 for h in snapshot.hosts if h.stale or h.reachable is False)
        self._redraw()

    def show_moving(self, moves: tuple[str, ...]) -> None:
        """The migrations under way ("web01 h1→h2"), at the end of the second line."""
        self._moving = moves
        self._redraw()

    def show_drift(self, count: int) -> None:
        self._drifted = count
        self._redraw()

    def _tick_state(self) -> tuple[bool, DataAge | None, tuple[str, ...]]:
        oldest = self._oldest
        now = self._clock()
        age = None if oldest is None else data_age(now - oldest, self._old_after_s)
        return self._read_only(), age, self._masters(now)

    def _masters(self, now: float) -> tuple[str, ...]:
        """Pools whose master is missing or down ("prod: master h1 unreachable for 4 min")."""
        snapshot = self._snapshot
        if snapshot is None:
            return ()
        problems = master_problems(snapshot.pools, snapshot.hosts, now)
        return tuple(f"{pool}: {text}" for pool, text in problems)

    def _tick(self) -> None:
        # Nothing is built while the header would read as it does: at the default interval
        # a healthy estate's data reads "just now" from one poll to the next.
        if self._tick_state() != self._ticked:
            self._redraw()

    def _redraw(self) -> None:
        self._ticked = self._tick_state()
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
            # The first round (or a host added since): how far it got, at a glance.
            answered = totals.hosts_up + totals.hosts_down
            total = answered + totals.hosts_unknown
            hosts += f" [{_UNKNOWN}]{totals.hosts_unknown} waiting[/]"
            hosts += f" ({answered} of {total} answered)"
        first.append(Content.from_markup(hosts))
        vm_count = Content(f"{totals.vm_count} VMs")
        memory = Content(
            f"memory {fmt.mib(totals.memory_committed_mib)} committed"
            f" / {fmt.mib(totals.memory_physical_mib)}"
        )
        last = [self._freshness()]
        sign = "!" if self._ascii else "⚠"
        for problem in self._ticked[2] if self._ticked else ():
            last.append(Content.from_markup(f"[$error b]{sign} $text[/]", text=problem))
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
        if self._moving:
            arrows = "<->" if self._ascii else "⇄"
            moving = Content(f"{arrows} migrating: {', '.join(self._moving)}")
            if self._ascii:
                moving = Content(str(moving).replace("→", "->"))
            second = self._bar.join([second, moving.stylize("bold $warning")])
        return Content("\n").join([line, second])

    def _freshness(self) -> Content:
        """The age of the oldest fresh data: bold warning once old (polls were missed)."""
        if self._oldest is None:
            return Content.from_markup("[$warning]no fresh data[/]")
        age = data_age(self._clock() - self._oldest, self._old_after_s)
        text = age.text if self._ascii else "⟳ " + age.text
        if self._stale:
            text += f", {self._stale} stale"
        if age.old:
            return Content.from_markup(f"[{OLD_STYLE}]$text[/]", text=text)
        if self._stale:
            return Content.from_markup("[$warning]$text[/]", text=text)
        return Content(text)
