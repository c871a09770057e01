"""Pure formatters shared by the screens and the headless commands."""

from __future__ import annotations

import datetime

UNKNOWN = "—"

# Local time to the second: the journal, drift, backups and job listings, on screen and in
# the headless commands' text output alike.
TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def timestamp(epoch_s: float) -> str:
    """A moment in local time, as every listing shows it: 2026-03-14 09:26:53."""
    return datetime.datetime.fromtimestamp(epoch_s).strftime(TIMESTAMP)


def mib(value: int | None, unknown: str = UNKNOWN) -> str:
    """A memory size given in MiB: 512 MiB, 1.5 GiB, 2.0 TiB.

    `unknown` stands for a size not reported: the screens' "—", or the "?" that the
    headless commands' plain text uses for every unknown.
    """
    if value is None:
        return unknown
    if value < 1024:
        return f"{value} MiB"
    return _scaled(value / 1024, ("GiB", "TiB"))


def size(value_bytes: int | None) -> str:
    """A file's size: 840 B, 84 KiB, 10.2 MiB, 1.5 GiB."""
    if value_bytes is None:
        return UNKNOWN
    if value_bytes < 1024:
        return f"{value_bytes} B"
    if value_bytes < 1024 * 1024:
        return f"{value_bytes // 1024} KiB"
    return _scaled(value_bytes / (1024 * 1024), ("MiB", "GiB", "TiB"))


def _scaled(value: float, units: tuple[str, ...]) -> str:
    """`value` in units[0], to one decimal, in the first unit where it shows under 1024:
    the unit is chosen after rounding, so 1023.96 GiB reads 1.0 TiB, not 1024.0 GiB."""
    for unit in units[:-1]:
        if round(value, 1) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {units[-1]}"


def duration(seconds: float | None) -> str:
    """A compact age or uptime: 42s, 5m, 3h 12m, 4d 07h."""
    if seconds is None:
        return UNKNOWN
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def uptime(seconds: float | None) -> str:
    """Minute resolution: a table ticking every second then redraws a row once a minute."""
    if seconds is None:
        return UNKNOWN
    minutes = int(max(0.0, seconds)) // 60
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def percent(value: float | None) -> str:
    if value is None or value != value:  # NaN: a host's arithmetic gone wrong, not a value
        return UNKNOWN
    return f"{value:.1f}"


def count(value: int | None) -> str:
    return UNKNOWN if value is None else str(value)
