"""A full disk, said as such: which file system is out of space.

SQLite reports a full disk as "database or disk is full" at best, and as a bare "disk I/O
error" when what failed was growing the shared-memory index (-shm) it reads a WAL database
through; its errors carry no errno. So the file system is asked: when the one holding the
file has (nearly) nothing left, the failure is put down to space, and the operator is told
which mount point, on which device, to clear.
"""

from __future__ import annotations

import os
from pathlib import Path

# Less than this left and a failed write is put down to space: SQLite writes pages of 4 KiB
# and grows its -shm 32 KiB at a time, so a failure with more free than this is something
# else (a bad block, a quota) and is reported as SQLite said it.
NEARLY_FULL_BYTES = 1 << 20


def file_system_full(path: Path) -> bool:
    """Whether the file system holding ``path`` (or where it would be made) is out of space.

    Out of blocks, or out of inodes (a new file then cannot be made at all). Root may use
    the blocks a file system reserves for it, so for root those count as free.
    """
    try:
        stats = os.statvfs(_existing(path))
    except OSError:
        return False
    is_root = getattr(os, "geteuid", lambda: -1)() == 0
    blocks = stats.f_bfree if is_root else stats.f_bavail
    if blocks * stats.f_frsize < NEARLY_FULL_BYTES:
        return True
    # A file system without a fixed number of inodes reports 0 of them in all.
    return stats.f_files > 0 and stats.f_favail == 0


def no_space_left(path: Path) -> str:
    """``no space left on /srv/data (/dev/sdb1)``: the mount point holding ``path``."""
    mount = mount_point(path)
    device = _device(mount)
    return f"no space left on {mount}" + (f" ({device})" if device else "")


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (symbolic links followed)."""
    here = Path(os.path.realpath(_existing(path)))
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def _existing(path: Path) -> Path:
    # A file about to be made (a new repository, a backup) is on its folder's file system.
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _device(mount: Path) -> str | None:
    """What is mounted there (``/dev/sdb1``, ``tmpfs``), from /proc/self/mounts on Linux."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split()
        # Spaces and tabs in the fields are written as octal escapes (\040, \011).
        if len(fields) >= 2 and _unescape(fields[1]) == str(mount):
            found = _unescape(fields[0])  # the last one mounted there is what is seen
    return found


def _unescape(field: str) -> str:
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, char)
    return field
