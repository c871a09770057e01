"""The pool → host tree, drawn with the Line API. Moving the cursor scopes the VM table.

Textual's own Tree re-lays out the screen for every node added, measures itself while
painting and builds each line on every paint. Here the lines are a flat list rebuilt only
when pools or hosts come or go; a poll that changes counts or reachability repaints just
the lines whose text changed, and each line's strip is built once per label (and per
theme, focus or width), so painting is a list lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import ClassVar, Final, Unpack

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from ovmtui.model import EstateSnapshot, HostKey, HostRole, HostStatus
from ovmtui.roles import master_problems
from ovmtui.terminal import to_ascii
from ovmtui.widgets._line_view import LineView, WidgetOptions, cells, cursor_bindings
from ovmtui.widgets._tree_lines import ASCII, UNICODE, Line, Part, Scope, fit
from ovmtui.widgets.state_style import HOST_STATE_STYLES, HostState, css_rules, host_state

__all__ = ["EstateTree", "Scope", "fit"]

_ROLE_TAGS: Final = {HostRole.MASTER: "M", HostRole.UTILITY: "U", HostRole.VM: "V"}

# Component classes; "" is the widget's own style.
_PLAIN: Final = ""
_GUIDES: Final = "estate-tree--guides"
_CURSOR: Final = "estate-tree--cursor"
_POOL: Final = "estate-tree--pool"
_DETAIL: Final = "estate-tree--detail"
_STATE: Final = {state: f"estate-tree--{state.value}" for state in HostState}
_STYLED: Final = (_PLAIN, _GUIDES, _CURSOR, _POOL, _DETAIL, *_STATE.values())


class EstateTree(LineView, can_focus=True):
    """Pools and their hosts, with reachability and VM counts, updated in place."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *cursor_bindings("tree"),
        Binding("left", "collapse", "Collapse", show=False, id="tree-collapse"),
        Binding("right", "expand", "Expand", show=False, id="tree-expand"),
        Binding("enter", "select_cursor", "Show", show=False, id="tree-select"),
        Binding("E", "evacuate", "Evacuate host", id="tree-evacuate"),
        Binding("T", "test_connection", "Test connection", id="tree-test-connection"),
        Binding("R", "restore", "Restore", id="tree-restore"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {name for name in _STYLED if name}

    DEFAULT_CSS = """
    EstateTree {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        & > .estate-tree--guides { color: $surface-lighten-2; }
        & > .estate-tree--cursor {
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .estate-tree--pool { text-style: bold; }
        & > .estate-tree--detail { text-style: dim; }
        &:focus {
            background-tint: $foreground 5%;
            & > .estate-tree--guides { color: $surface-lighten-3; }
            & > .estate-tree--cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
        &:light > .estate-tree--guides { color: $surface-darken-1; }
    }
    EstateTree:ansi {
        color: ansi_default;
        & > .estate-tree--guides { color: $ansi-background; }
        &:nocolor > .estate-tree--cursor { text-style: reverse; }
    }
    """ + css_rules("EstateTree", "estate-tree--", HOST_STATE_STYLES)

    class ScopeChanged(Message):
        def __init__(self, scope: Scope) -> None:
            super().__init__()
            self.scope = scope

    class EvacuationAsked(Message):
        """`E` on a host: the screen shows the plan to empty it."""

        def __init__(self, host: HostKey) -> None:
            super().__init__()
            self.host = host

    class ConnectionTestAsked(Message):
        """`T` on a host: the screen tests the connection to it."""

        def __init__(self, host: HostKey) -> None:
            super().__init__()
            self.host = host

    class RestoreAsked(Message):
        """`R` on a host (restore it) or a pool (every host of it, masters first)."""

        def __init__(self, pool: str, host: HostKey | None) -> None:
            super().__init__()
            self.pool = pool
            self.host = host

    def __init__(
        self, *, clock: Callable[[], float] = time.time, **options: Unpack[WidgetOptions]
    ) -> None:
        super().__init__(**options)
        self._now = clock  # "master h1 unreachable for 4 min" counts from a host's failed_at
        self._glyphs = ASCII if self._ascii else UNICODE
        self._root = Line(Scope(), (("Estate", _PLAIN),), 0)
        self._root.place(0, "", self._glyphs.expanded)
        self._lines: list[Line] = [self._root]
        self._pools: dict[str, Line] = {}
        # Keyed by (pool, name), not HostKey: a plain tuple is several times cheaper to
        # build and hash, and show_estate does both for every host of every snapshot.
        self._hosts: dict[tuple[str, str], Line] = {}
        self._order: list[Line] = []  # host lines in snapshot order
        self._pool_order: list[str] = []  # the estate's, pools without a host included
        self._cursor = self._root
        # Painting: styles by component class, and the width lines are cut to. A change
        # to either starts a new epoch, which retires every cached strip at once.
        self._palette: dict[str, Style] | None = None
        self._width = 0
        self._epoch = 0
        self._blank = Strip.blank(0)

    # -- reading

    @property
    def cursor_scope(self) -> Scope:
        return self._cursor.scope

    def labels(self) -> list[str]:
        """Each shown line's label in order, the "Estate" root first.

        Whole labels, as they would read without truncation, and without the guides and
        ▼/▶ icons; hosts of a collapsed pool are not shown, so they are not listed.
        """
        return [line.text for line in self._lines]

    # -- feeding

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        """Relabel in place, repainting only the lines whose text changed.

        O(hosts): a host is looked at through its status and VM count, never its VMs.
        """
        prior = self._order
        structural = len(prior) != len(snapshot.hosts)
        order: list[Line] = []
        # Pools in the estate's order, those without a host yet too.
        counts: dict[str, list[int]] = {pool: [0, 0, 0] for pool in snapshot.pools}
        changed: list[Line] = []
        for host in snapshot.hosts:
            pool_counts = counts.get(host.pool)
            if pool_counts is None:
                pool_counts = counts[host.pool] = [0, 0, 0]
            pool_counts[0] += host.reachable is True
            pool_counts[1] += 1
            pool_counts[2] += len(host.vms)
            key = (host.pool, host.name)
            line = self._hosts.get(key)
            if line is None:
                line = self._hosts[key] = Line(Scope(host.pool, host.name), (), 1)
                structural = True
            elif not structural and prior[len(order)] is not line:
                structural = True  # same hosts, another order
            order.append(line)
            signature = (host.reachable, host.stale, len(host.vms), host.roles)
            if line.signature != signature:
                line.signature = signature
                line.relabel(self._host_parts(host))
                changed.append(line)
        notes: dict[str, list[str]] = {}
        for pool, note in master_problems(counts, snapshot.hosts, self._now(), with_limits=True):
            notes.setdefault(pool, []).append(note)
        for pool, (up, total, vms) in counts.items():
            line = self._pools.get(pool)
            if line is None:
                line = self._pools[pool] = Line(Scope(pool), (), 0)
                structural = True
            # The pool's contact point missing, or what it cannot do for want of a role.
            master = f" {self._glyphs.dot} ".join(notes[pool]) if pool in notes else None
            if line.signature != (up, total, vms, master):
                line.signature = (up, total, vms, master)
                dot = self._glyphs.dot
                detail = f"  {up}/{total} up {dot} {vms} VMs" if total else "  no hosts yet"
                parts = [(self._text(pool), _POOL), (detail, _DETAIL)]
                if master is not None:
                    parts.append((f" {dot} {self._text(master)}", _STATE[HostState.DOWN]))
                line.relabel(tuple(parts))
                changed.append(line)
        pool_order = list(counts)
        if pool_order != self._pool_order:
            self._pool_order = pool_order
            structural = True
        if structural:
            self._order = order
            self._forget_gone(order, counts)
            self._relayout()
        else:
            self._refresh_lines(line.index for line in changed)

    def _forget_gone(self, order: list[Line], pools: Iterable[str]) -> None:
        shown = set(order)
        for key in [key for key, line in self._hosts.items() if line not in shown]:
            self._hosts.pop(key).index = -1
        kept = set(pools)
        for pool in [pool for pool in self._pools if pool not in kept]:
            self._pools.pop(pool).index = -1

    def _relayout(self) -> None:
        """Rebuild the shown lines after pools or hosts came, went or were folded."""
        for line in self._lines:
            line.index = -1
        by_pool: dict[str, list[Line]] = {pool: [] for pool in self._pool_order}
        for host_line in self._order:
            by_pool.setdefault(host_line.scope.pool or "", []).append(host_line)
        lines = [self._root]
        self._root.index = 0
        last_pool = len(by_pool) - 1
        g = self._glyphs
        for p, (pool, hosts) in enumerate(by_pool.items()):
            pool_line = self._pools[pool]
            guide = g.last_branch if p == last_pool else g.branch
            pool_line.place(len(lines), guide, self._icon(pool_line.expanded))
            lines.append(pool_line)
            if not pool_line.expanded:
                continue
            stem = "  " if p == last_pool else g.stem
            for h, host_line in enumerate(hosts):
                branch = g.last_branch if h == len(hosts) - 1 else g.branch
                host_line.place(len(lines), stem + branch, "")
                lines.append(host_line)
        self._lines = lines
        self._sync_virtual_size()
        self._relocate_cursor()
        self.refresh()

    def _relocate_cursor(self) -> None:
        # A cursor whose line is still shown follows it, wherever it now is; one whose
        # host went (or was folded away) falls back to the pool, else to the root.
        cursor = self._cursor
        if cursor.index >= 0:
            return
        pool = self._pools.get(cursor.scope.pool or "")
        self._cursor = pool if pool is not None and pool.index >= 0 else self._root
        self.post_message(self.ScopeChanged(self._cursor.scope))

    # -- the line view's questions (lines are cut to the viewport: width 0)

    def _line_count(self) -> int:
        return len(self._lines)

    def _cursor_line(self) -> int:
        return self._cursor.index

    def _put_cursor(self, index: int) -> None:
        self._cursor = self._lines[index]

    # -- cursor

    def select_host(self, key: HostKey) -> bool:
        """Put the cursor on host `key`, in view, and scope the VM table to it."""
        line = self._hosts.get((key.pool, key.name))
        if line is None:
            return False
        if line.index < 0:
            self._set_expanded(self._pools[key.pool], True)
        self._move_cursor(line.index, always_post=True)
        return True

    def _move_cursor(self, index: int, *, always_post: bool = False) -> None:
        old = self._cursor
        super()._move_cursor(index)
        if always_post or self._cursor is not old:
            self.post_message(self.ScopeChanged(self._cursor.scope))

    def _set_expanded(self, pool: Line, expanded: bool) -> None:
        if pool.expanded != expanded:
            pool.expanded = expanded
            self._relayout()

    # -- painting

    def _prepare_paint(self) -> None:
        palette = {
            name: self.get_visual_style(*(name,) if name else ()).rich_style for name in _STYLED
        }
        width = self.scrollable_content_region.width
        if palette != self._palette or width != self._width:
            self._palette, self._width = palette, width
            self._epoch += 1
            self._blank = Strip.blank(width, palette[_PLAIN])

    def render_lines(self, crop: Region) -> list[Strip]:
        # Theme, focus or size may have changed since the last paint.
        self._prepare_paint()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._palette is None:
            self._prepare_paint()
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        if index >= len(self._lines):
            return self._blank
        line = self._lines[index]
        if line.epoch != self._epoch:
            line.epoch, line.strip, line.cursor_strip = self._epoch, None, None
        if line is self._cursor:
            strip = line.cursor_strip or self._paint(line, cursor=True)
        else:
            strip = line.strip or self._paint(line, cursor=False)
        return strip.crop(scroll_x, scroll_x + self._width) if scroll_x else strip

    def _paint(self, line: Line, *, cursor: bool) -> Strip:
        palette, width = self._palette, self._width
        assert palette is not None
        base = palette[_PLAIN]
        segments = []
        if line.guides:
            segments.append(Segment(line.guides, palette[_GUIDES]))
        if line.icon:
            segments.append(Segment(line.icon, base))
        room = width - cells(line.guides) - cells(line.icon)
        used = width - room
        # The cursor is the label's alone, as in Textual's Tree; its colours win.
        highlight = palette[_CURSOR] if cursor else None
        # A pool's note (its master, what it lacks) gives way before its name and counts.
        noted = line.scope.host is None and len(line.parts) == 3
        optional = 2 if noted else None
        for text, name in fit(line.parts, line.shrink, room, self._glyphs.more, optional=optional):
            style = palette[name] if highlight is None else palette[name] + highlight
            segments.append(Segment(text, style))
            used += cells(text)
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        strip = Strip(segments, width) if used <= width else Strip(segments).crop(0, width)
        if cursor:
            line.cursor_strip = strip
        else:
            line.strip = strip
        return strip

    # -- keys and mouse

    def action_select_cursor(self) -> None:
        self.post_message(self.ScopeChanged(self._cursor.scope))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "evacuate":
            # Only on a host line; elsewhere `E` is the screen's (export definitions).
            return self._cursor.scope.host_key is not None
        if action == "test_connection":
            return self._cursor.scope.host_key is not None
        if action == "restore":
            return self._cursor.scope.pool is not None
        return True

    def action_evacuate(self) -> None:
        host = self._cursor.scope.host_key
        if host is not None:
            self.post_message(self.EvacuationAsked(host))

    def action_test_connection(self) -> None:
        host = self._cursor.scope.host_key
        if host is not None:
            self.post_message(self.ConnectionTestAsked(host))

    def action_restore(self) -> None:
        scope = self._cursor.scope
        if scope.pool is not None:
            self.post_message(self.RestoreAsked(scope.pool, scope.host_key))

    def action_collapse(self) -> None:
        cursor = self._cursor
        scope = cursor.scope
        if scope.host is not None:
            self._move_cursor(self._pools[scope.pool or ""].index)
        elif scope.pool is not None and cursor.expanded:
            self._set_expanded(cursor, False)
        elif scope.pool is not None:
            self._move_cursor(0)

    def action_expand(self) -> None:
        cursor = self._cursor
        if cursor.scope.pool is None or cursor.scope.host is not None:
            return
        if cursor.expanded:
            self._move_cursor(cursor.index + 1)  # into the pool, as file trees do
        else:
            self._set_expanded(cursor, True)

    def _clicked(self, x: int, y: int, chain: int) -> None:
        index = self._line_at(y)
        if index is None:
            return
        line = self._lines[index]
        # The cursor first: folding the pool it is in would otherwise move it twice.
        self._move_cursor(index, always_post=True)
        icon_at = cells(line.guides)
        is_pool = line.scope.host is None and line.scope.pool is not None
        if is_pool and icon_at <= x < icon_at + cells(line.icon):
            self._set_expanded(line, not line.expanded)

    def _icon(self, expanded: bool) -> str:
        return self._glyphs.expanded if expanded else self._glyphs.collapsed

    def _text(self, name: str) -> str:
        # Names come from estate files and hosts: any character, one cell each in ASCII.
        return to_ascii(name) if self._ascii else name

    def _host_parts(self, host: HostStatus) -> tuple[Part, ...]:
        state = host_state(host)
        parts: list[Part] = [
            (self._glyphs.host(state) + " ", _STATE[state]),
            (self._text(host.name), _PLAIN),
        ]
        roles = "".join(_ROLE_TAGS[r] for r in host.roles)
        if roles:
            parts.append((f" [{roles}]", _DETAIL))
        parts.append((f" {len(host.vms)}", _DETAIL))
        return tuple(parts)
