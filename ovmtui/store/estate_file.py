"""Editing the estate file in place: the operator's comments, order and formatting kept.

The estate file stays the source of truth. An edit (``ovmtui host add``, ``N`` in the TUI, …)
is made with tomlkit on the text that was read, validated exactly as at start-up
(``config.parse_estate`` of the new text), and written safely: the previous version kept as
``estate.toml.<UTC time>.bak``, the new one written to a temporary file beside it, fsynced
and renamed over it. A file that changed on disk since it was read is refused, never
overwritten: another ovmtui or an editor wrote it, and their change would be lost.

Comments: TOML has no notion of which table a comment belongs to; tomlkit keeps a comment
with the table *above* it. An operator writes the comment *above* the table it is about, so
tables added or removed here carry the comments just above their header with them
(``Blocks``).
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ovmtui.config import MAX_FILE_BYTES, EstateConfig, HostConfig, parse_estate
from ovmtui.errors import ConfigError
from ovmtui.files import fsync_directory

if TYPE_CHECKING:
    from ovmtui.store._estate_toml import Blocks

BACKUP_SUFFIX = ".bak"


class EstateFileChanged(ConfigError):
    """The file on disk is not the one that was read: nothing is written over it."""

    title = "Estate file changed on disk"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What a cheap ``stat`` tells of the file: changed when any of these changed."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, slots=True)
class EstateFile:
    """An estate file as read: its text, the hash of its bytes and what it says."""

    path: Path
    text: str
    digest: str  # SHA-256 of the bytes read: what "changed since it was read" compares
    estate: EstateConfig
    stamp: FileStamp | None = None

    @classmethod
    def read(cls, path: Path) -> EstateFile:
        """Read and validate ``path`` as at start-up (``ConfigError`` when it is wrong)."""
        stamp = FileStamp.of(path)
        raw = _read_bytes(path)
        text = _text_of(path, raw)
        return cls(path, text, _digest(raw), _parse(text, path), stamp)

    def edited(self, edit: EstateEdit) -> str:
        """The new text with ``edit`` made; validated as at start-up. Raises ``ConfigError``
        (an unknown pool or host, a duplicate, a second master, a bad URI: what start-up
        would refuse, and what the edit itself cannot do)."""
        import tomlkit  # only when editing: see _estate_toml.py

        from ovmtui.store._estate_toml import Blocks

        doc = tomlkit.parse(self.text)
        edit.apply(Blocks(doc), self.estate)
        text = tomlkit.dumps(doc)
        _parse(text, self.path)  # parsed for its errors: what start-up would refuse is refused here
        return text

    def write(self, text: str, *, now: dt.datetime | None = None) -> tuple[EstateFile, Path]:
        """Replace the file with ``text``: the old one kept as ``<name>.<UTC time>.bak``.

        Refused (``EstateFileChanged``) when the file on disk is no longer what was read.
        Returns the file as written and the backup's path.
        """
        target = self.path.resolve()  # a symlinked estate file stays a symlink
        new = _parse(text, self.path)
        with _locked(target):
            # Read again under the lock, by its path: a rename by another writer shows here.
            try:
                current = _read_bytes(target)
            except ConfigError:
                current = b""
            if _digest(current) != self.digest:
                raise EstateFileChanged(
                    f"{self.path} changed on disk since ovmtui read it (another ovmtui or an "
                    "editor wrote it): nothing was written. Read it again and redo the change."
                )
            mode = target.stat().st_mode & 0o7777
            backup = _backup_path(target, now or dt.datetime.now(dt.UTC))
            _write_new(backup, current, mode)
            data = text.encode("utf-8")
            fd, partial = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fchmod(file.fileno(), mode)
                    os.fsync(file.fileno())
                os.replace(partial, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                raise
            fsync_directory(target.parent)
        written = EstateFile(self.path, text, _digest(data), new, FileStamp.of(self.path))
        return written, backup


# -- edits ---------------------------------------------------------------------------------


class EstateEdit(abc.ABC):
    """One change to the estate file. ``operation``/``command`` go to the journal."""

    operation: str = "estate-edit"

    @property
    @abc.abstractmethod
    def command(self) -> str:
        """The equivalent ``ovmtui pool|host ...`` command line."""

    @abc.abstractmethod
    def target(self) -> tuple[str | None, str | None]:
        """The pool and host the journal records it against."""

    @abc.abstractmethod
    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        """Make the change in the document (``ConfigError`` when it cannot be made)."""


@dataclass(frozen=True, slots=True)
class AddPool(EstateEdit):
    name: str
    shared_storage: str | None = None
    operation: str = "estate-pool-add"

    def target(self) -> tuple[str | None, str | None]:
        return self.name, None

    @property
    def command(self) -> str:
        extra = [] if self.shared_storage is None else ["--shared-storage", self.shared_storage]
        return _join(["ovmtui", "pool", "add", self.name, *extra])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        if any(p.name == self.name for p in estate.pools):
            raise ConfigError(f"pool {self.name!r} exists already; pool names must be unique")
        import tomlkit  # only when editing: see _estate_toml.py

        table = tomlkit.table()
        table["name"] = self.name
        if self.shared_storage is not None:
            table["shared_storage"] = self.shared_storage
        blocks.add_pool(table)


@dataclass(frozen=True, slots=True)
class RemovePool(EstateEdit):
    name: str
    operation: str = "estate-pool-remove"

    def target(self) -> tuple[str | None, str | None]:
        return self.name, None

    @property
    def command(self) -> str:
        return _join(["ovmtui", "pool", "remove", self.name])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        pool = _pool(estate, self.name)
        if pool.hosts:
            names = ", ".join(h.name for h in pool.hosts)
            raise ConfigError(
                f"pool {self.name!r} still has hosts ({names}): remove them first "
                "(ovmtui host remove NAME)"
            )
        if len(estate.pools) == 1:
            raise ConfigError(
                f"pool {self.name!r} is the estate's last: an estate has one at least"
            )
        blocks.remove_pool(self.name)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A host's connection and roles, as the add and edit forms and commands give them."""

    libvirt: str | None = None
    ssh: str | None = None
    identity: str | None = None
    toolstack: str | None = None  # None: not written (auto)
    jump: str | None = None
    roles: tuple[str, ...] | None = None  # None: not written

    def args(self) -> list[str]:
        out: list[str] = []
        if self.libvirt is not None:
            out += ["--libvirt", self.libvirt]
        if self.ssh is not None:
            out += ["--ssh", self.ssh]
        if self.identity is not None:
            out += ["--identity", self.identity]
        if self.toolstack is not None:
            out += ["--toolstack", self.toolstack]
        if self.jump is not None:
            out += ["--jump", self.jump]
        if self.roles is not None:
            out += ["--roles", ",".join(self.roles)]
        return out

    def values(self) -> dict[str, Any]:
        """The keys to write, in the README's order; None: the key is removed."""
        return {
            "libvirt": self.libvirt,
            "ssh": self.ssh,
            "identity": self.identity,
            "toolstack": self.toolstack,
            "jump": self.jump,
            "roles": None if self.roles is None else list(self.roles),
        }


@dataclass(frozen=True, slots=True)
class AddHost(EstateEdit):
    pool_name: str
    name: str
    spec: HostSpec
    operation: str = "estate-host-add"

    def target(self) -> tuple[str | None, str | None]:
        return self.pool_name, self.name

    @property
    def command(self) -> str:
        return _join(["ovmtui", "host", "add", self.pool_name, self.name, *self.spec.args()])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        _pool(estate, self.pool_name)
        other = next((h for h in estate.hosts if h.name == self.name), None)
        if other is not None:
            raise ConfigError(
                f"host {self.name!r} exists already (in pool {other.pool!r}); host names are "
                "unique across the estate"
            )
        import tomlkit  # only when editing: see _estate_toml.py

        table = tomlkit.table()
        table["name"] = self.name
        for key, value in self.spec.values().items():
            if value is not None:
                table[key] = value
        blocks.add_host(self.pool_name, table)


@dataclass(frozen=True, slots=True)
class EditHost(EstateEdit):
    """A host's connection and roles replaced (its name and pool stay)."""

    name: str
    spec: HostSpec
    operation: str = "estate-host-edit"

    def target(self) -> tuple[str | None, str | None]:
        return None, self.name

    @property
    def command(self) -> str:
        return _join(["ovmtui", "host", "edit", self.name, *self.spec.args()])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        host = _host(estate, self.name)
        table = blocks.host_table(host.pool, host.name)
        for key, value in self.spec.values().items():
            blocks.set_key(table, key, value)


@dataclass(frozen=True, slots=True)
class RemoveHost(EstateEdit):
    name: str
    forced: bool = False
    operation: str = "estate-host-remove"

    def target(self) -> tuple[str | None, str | None]:
        return None, self.name

    @property
    def command(self) -> str:
        force = ["--force", self.name] if self.forced else []
        return _join(["ovmtui", "host", "remove", self.name, *force])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        host = _host(estate, self.name)
        blocks.remove_host(host.pool, host.name)


@dataclass(frozen=True, slots=True)
class SetRoles(EstateEdit):
    name: str
    roles: tuple[str, ...]
    operation: str = "estate-host-roles"

    def target(self) -> tuple[str | None, str | None]:
        return None, self.name

    @property
    def command(self) -> str:
        return _join(["ovmtui", "host", "roles", self.name, ",".join(self.roles)])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        host = _host(estate, self.name)
        blocks.set_key(blocks.host_table(host.pool, host.name), "roles", list(self.roles))


@dataclass(frozen=True, slots=True)
class Promote(EstateEdit):
    """The master role moved to ``name`` from whichever host of its pool held it."""

    name: str
    reason: str
    operation: str = "estate-host-promote"

    def target(self) -> tuple[str | None, str | None]:
        return None, self.name

    @property
    def command(self) -> str:
        return _join(["ovmtui", "host", "promote", self.name, "--reason", self.reason])

    def apply(self, blocks: Blocks, estate: EstateConfig) -> None:
        if not self.reason.strip():
            raise ConfigError("a promotion needs a reason (--reason TEXT): it is journaled")
        host = _host(estate, self.name)
        pool = _pool(estate, host.pool)
        if "master" in host.roles:
            raise ConfigError(f"{self.name} is the master of pool {pool.name} already")
        for other in pool.hosts:
            if "master" in other.roles:
                kept = [r.value for r in other.roles if r.value != "master"]
                table = blocks.host_table(pool.name, other.name)
                blocks.set_key(table, "roles", kept)
        roles = ["master", *(r.value for r in host.roles)]
        blocks.set_key(blocks.host_table(pool.name, host.name), "roles", roles)


def old_master(estate: EstateConfig, host: str) -> str | None:
    """The master of ``host``'s pool before a promotion, or None."""
    config = _host(estate, host)
    pool = _pool(estate, config.pool)
    return next((h.name for h in pool.hosts if "master" in h.roles), None)


def parse_roles(text: str) -> tuple[str, ...]:
    """``master,utility,vm`` (spaces allowed, empty for none): checked by the estate's
    parser like any other value, so only the shape is read here."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# -- the document: tables found, added and removed with the comments above them -----------


def _pool(estate: EstateConfig, name: str) -> Any:
    for pool in estate.pools:
        if pool.name == name:
            return pool
    names = ", ".join(p.name for p in estate.pools)
    raise ConfigError(f"no pool {name!r} in {estate.source}; it has {names}")


def _host(estate: EstateConfig, name: str) -> HostConfig:
    for host in estate.hosts:
        if host.name == name:
            return host
    names = ", ".join(h.name for h in estate.hosts) or "none"
    raise ConfigError(f"no host {name!r} in {estate.source}; it has {names}")


def _join(argv: Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    return raw


def _text_of(path: Path, raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than 1 MiB, the most an estate file may be")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None


def _parse(text: str, path: Path) -> EstateConfig:
    # As load_estate does: universal newlines, relative paths from the file's directory.
    return parse_estate(
        text.replace("\r\n", "\n").replace("\r", "\n"), str(path), base_dir=path.parent
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two ovmtui processes editing at once take turns (an editor does not lock: the hash
    comparison catches it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open it: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _backup_path(target: Path, now: dt.datetime) -> Path:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = target.with_name(f"{target.name}.{stamp}{BACKUP_SUFFIX}")
    n = 2
    while candidate.exists():
        # "_": sorts after the "." of the first one, so names sort as the versions do.
        candidate = target.with_name(f"{target.name}.{stamp}_{n}{BACKUP_SUFFIX}")
        n += 1
    return candidate


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def backups_of(path: Path) -> list[Path]:
    """The kept versions of an estate file, oldest first."""
    target = path.resolve()
    prefix = f"{target.name}."
    return sorted(
        p
        for p in target.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(BACKUP_SUFFIX)
    )
