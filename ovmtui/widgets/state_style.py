"""One table of state colours: how a VM's or a host's state is coloured wherever it shows.

The header's counts, the VM table's State column, the tree's host glyphs and the host
panel's reachability line all read these two mappings, so a state has one colour on every
screen. Colours are theme variables (rule: no hard-coded colours); `markup` is for
`Content.from_markup`, `css` for a widget's DEFAULT_CSS.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ovmtui.model import HostStatus, VmState


@dataclass(frozen=True, slots=True)
class StateStyle:
    colour: str  # a theme variable: "$success"
    bold: bool = False

    @property
    def markup(self) -> str:
        """The style in content markup: "$error b" as in "[$error b]3 crashed[/]"."""
        return f"{self.colour} b" if self.bold else self.colour

    @property
    def css(self) -> str:
        """The style as TCSS declarations."""
        return f"color: {self.colour};" + (" text-style: bold;" if self.bold else "")


_GOOD: Final = StateStyle("$success")
_HELD: Final = StateStyle("$warning")
_FAILED: Final = StateStyle("$error", bold=True)

VM_STATE_STYLES: Final[Mapping[VmState, StateStyle]] = MappingProxyType(
    {
        VmState.RUNNING: _GOOD,
        VmState.BLOCKED: _GOOD,  # running, waiting on I/O: nothing is wrong
        # Not running, yet holding the host's memory: it wants someone's attention.
        VmState.PAUSED: _HELD,
        VmState.SUSPENDED: _HELD,
        VmState.SHUTTING_DOWN: _HELD,
        VmState.SHUTOFF: StateStyle("$foreground-muted"),
        VmState.CRASHED: _FAILED,
        VmState.DYING: StateStyle("$error"),
        VmState.UNKNOWN: StateStyle("$foreground-disabled"),
    }
)


class HostState(enum.StrEnum):
    """A host as the tree, the panel and the header colour it."""

    UP = "up"
    UNKNOWN = "unknown"  # not polled yet, or known only from the repository
    DOWN = "down"


HOST_STATE_STYLES: Final[Mapping[HostState, StateStyle]] = MappingProxyType(
    {HostState.UP: _GOOD, HostState.UNKNOWN: _HELD, HostState.DOWN: _FAILED}
)


def markup(state: VmState | HostState) -> str:
    """The style of `state` in content markup, as in f"[{markup(state)}]3 crashed[/]"."""
    if isinstance(state, HostState):
        return HOST_STATE_STYLES[state].markup
    return VM_STATE_STYLES[state].markup


def host_state(host: HostStatus) -> HostState:
    if host.reachable is False:
        return HostState.DOWN
    if host.stale or host.reachable is None:
        return HostState.UNKNOWN
    return HostState.UP


def css_rules(
    widget: str, prefix: str, styles: Mapping[VmState, StateStyle] | Mapping[HostState, StateStyle]
) -> str:
    """A TCSS rule colouring `widget`'s component classes `prefix` + each state's value."""
    rules = "".join(
        f"\n    & > .{prefix}{state.value} {{ {style.css} }}" for state, style in styles.items()
    )
    return f"{widget} {{{rules}\n}}\n"
