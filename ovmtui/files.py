"""Files that survive a crash or a power cut: fsync before a rename, then the directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[int]:
    """Create ``path`` (mode 0600) and hold an exclusive lock on it while the block runs.

    The lock, not the file's age, is what tells a working backup or restore from the debris
    of a killed one (see ``remove_debris``); the kernel drops it when its holder dies. flock
    is used, not fcntl: SQLite's own fcntl locks on the same file do not interfere with it.
    The descriptor must stay open until SQLite is done with the file, since closing any
    descriptor of a file drops the process's fcntl locks on it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileInUse(path) from None
        yield fd
    finally:
        os.close(fd)


class FileInUse(Exception):
    """Another live process holds the file's lock (see ``claimed``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is in use by another process")
        self.path = path


COMPANIONS = ("-journal", "-wal", "-shm")


def remove_debris(directory: Path, suffix: str) -> list[Path]:
    """Remove ``*suffix`` files (and SQLite's companions) that no live process holds.

    Returns what was removed. A file whose lock is held is left alone: it is work in
    progress, however old. A companion whose main file is gone is debris too: its writer
    created the main file first and held it while SQLite wrote beside it.
    """
    if not directory.is_dir():
        return []
    removed: list[Path] = []
    for path in sorted(directory.iterdir()):
        if path.name.endswith(suffix):
            with contextlib.suppress(FileInUse, OSError), _taken(path):
                for debris in (path, *(_beside(path, c) for c in COMPANIONS)):
                    if debris.exists():
                        debris.unlink()
                        removed.append(debris)
    for path in sorted(directory.iterdir()):
        for companion in COMPANIONS:
            main = path.name.removesuffix(companion)
            if main != path.name and main.endswith(suffix) and not (directory / main).exists():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


@contextlib.contextmanager
def _taken(path: Path) -> Iterator[None]:
    """Lock an existing file without creating it (a vanished one raises FileNotFoundError)."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileInUse(path) from None
        yield
    finally:
        os.close(fd)


def _beside(path: Path, companion: str) -> Path:
    return path.with_name(path.name + companion)
