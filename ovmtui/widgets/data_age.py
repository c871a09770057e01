"""How old the data on screen is, in steps an operator reads at a glance.

The header and the host panel both show it. Its text changes in steps, not every second:
each change repaints a widget, and an idle TUI watching a healthy estate should repaint
nothing. Under 10 s it reads "just now": at the default 5 s interval a healthy host's data
is never older, so the words stay put between polls. Then steps of 5 s up to a minute ("15s
ago"), whole minutes ("3m ago"), and hours ("2h 05m ago"). From `OLD_AFTER_S` on, polls
have been missed and the age is drawn in the warning colour, bold.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from ovmtui import format as fmt

JUST_NOW_S: Final = 10.0  # two polls at the default interval
STEP_S: Final = 5
OLD_AFTER_S: Final = 60.0  # twelve polls missed at the default interval
OLD_STYLE: Final = "$warning b"


class DataAge(NamedTuple):
    """What is shown of an age: compare two of them to know whether to repaint."""

    text: str  # "just now", "15s ago", "3m ago"
    old: bool  # drawn in OLD_STYLE


def data_age(seconds: float, old_after_s: float = OLD_AFTER_S) -> DataAge:
    """The age of data `seconds` old, as shown."""
    s = max(0.0, seconds)
    if s < JUST_NOW_S:
        text = "just now"
    elif s < 60:
        text = f"{int(s) // STEP_S * STEP_S}s ago"
    else:
        text = f"{fmt.duration(s)} ago"  # whole minutes, then hours and minutes, then days
    return DataAge(text, s >= old_after_s)
