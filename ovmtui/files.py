"""Files that survive a crash or a power cut: fsync before a rename, then the directory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def fsync_directory(directory: Path) -> None:
    """Makes a rename in ``directory`` durable (some file systems cannot: then nothing)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(partial: Path, final: Path) -> None:
    """Move a complete ``partial`` file to ``final``, durably."""
    fsync_file(partial)
    os.replace(partial, final)
    fsync_directory(final.parent)


def stamped_files(directory: Path, prefix: str, suffix: str) -> list[Path]:
    """The files named ``prefix…suffix`` (time-stamped names), oldest first."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)
    )
