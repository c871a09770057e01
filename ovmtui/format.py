"""Pure formatters shared by the screens and the headless commands."""

from __future__ import annotations

UNKNOWN = "—"


def size(value_bytes: int | None) -> str:
    """A file's size: 840 B, 84 KiB, 10.2 MiB, 1.5 GiB."""
    if value_bytes is None:
        return UNKNOWN
    if value_bytes < 1024:
        return f"{value_bytes} B"
    if value_bytes < 1024 * 1024:
        return f"{value_bytes // 1024} KiB"
    return (
        mib(round(value_bytes / (1024 * 1024)))
        if value_bytes >= 1 << 30
        else (f"{value_bytes / (1024 * 1024):.1f} MiB")
    )


def mib(value: int | None) -> str:
    if value is None:
        return UNKNOWN
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):.1f} TiB"
    if value >= 1024:
        return f"{value / 1024:.1f} GiB"
    return f"{value} MiB"


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
