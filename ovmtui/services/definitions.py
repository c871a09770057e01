"""VM definitions: saved from every host into one verified archive, defined again from it.

The archive is the way back when a host is lost: every VM's own definition (libvirt domain
XML now; Xen ``vm.cfg`` later) in one ``definitions-<UTC time>.tar.gz`` whose first member,
``manifest.json``, says where each VM was, in which state, and the SHA-256 of its file.
Member names are built from sanitized names (``pool/host/name--uuid.xml``), so no VM name can
lead a file outside the archive's folders. An archive is written as ``NAME.partial``, fsynced
and renamed: a failure (a full disk, a cancel) leaves no archive that could pass for a whole
one.

The checksums catch a file changed by accident, not on purpose: whoever edits a member can
write its new SHA-256 into the manifest too. So the repository signs what it exports: the
second member, ``manifest.sig``, is the JSON object ``{"format":
"ovmtui-definitions-signature", "algorithm": "hmac-sha256", "repository": ID, "hmac": HEX}``,
where ID is the exporting repository's identity and HEX the HMAC-SHA256, under that
repository's archive key (``meta.archive_key``), of ``manifest.json``'s bytes exactly as they
are in the archive. No canonical form to get wrong: any changed byte of the manifest, and so
(through its checksums) of any definition, breaks the signature. By hand::

    openssl dgst -sha256 -mac HMAC -macopt hexkey:KEY manifest.json

An archive imports as it stands only when it verifies as this repository's own. One signed
by another repository (whose key this one does not have), unsigned (made by an ovmtui before
format 2, or its ``manifest.sig`` missing) or whose signature does not match is refused
unless the operator says ``--trust-archive``; the journal then records that it was imported
unverified, and why.

Importing defines one VM again on a host of the operator's choice, but only when no host of
the estate has it, as far as can be known: two hosts starting the same disks corrupt them.
It is written to the audit journal like any action. Pure asyncio, no Textual: the CLI and the
TUI share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import errno
import hashlib
import hmac
import json
import os
import re
import shlex
import tarfile
import threading
import time
import uuid as uuid_module
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ovmtui import __version__
from ovmtui.backend.base import Backend, DefinitionSink, DefinitionSource
from ovmtui.errors import (
    ActionRefused,
    ArchiveError,
    HostUnreachable,
    OvmError,
    VmNotFound,
)
from ovmtui.files import fsync_directory, stamped_files
from ovmtui.identity import current_user
from ovmtui.model import Capability, EstateSnapshot, HostKey, HostStatus, Vm
from ovmtui.operations import Journal as ActionJournal
from ovmtui.operations import Operation, Operations
from ovmtui.space import no_space_left

FORMAT = "ovmtui-definitions"
# 2: signed (manifest.sig). An older ovmtui then says "written by a newer ovmtui" instead of
# calling the signature an intruder; this one still reads format 1, as unsigned.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNATURE_FORMAT = "ovmtui-definitions-signature"
SIGNATURE_ALGORITHM = "hmac-sha256"
TRUST_FLAG = "--trust-archive"
KIND_LIBVIRT_XML = "libvirt-xml"
KIND_XEN_CFG = "xen-vm.cfg"
IMPORT_OPERATION = "import-definition"
CONCURRENCY_DEFAULT = 8

_PREFIX = "definitions-"
_SUFFIX = ".tar.gz"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_EXTENSIONS = {KIND_LIBVIRT_XML: ".xml", KIND_XEN_CFG: ".cfg"}
# Far above any real definition or manifest (10,000 VMs take ~4 MiB): a bound against
# archives crafted to exhaust memory, not a limit anyone should meet.
_MAX_MEMBER_BYTES = 16 * 1024 * 1024
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_MAX_SIGNATURE_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_PART = 80
# What a member name written by us looks like: folders and a file of safe characters, none
# starting with a dot or a dash (so never "." nor ".."), never absolute.
_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")


# --------------------------------------------------------------------------- data


class KeyHolder(Protocol):
    """What holds an archive key: a repository (``Repository`` is one)."""

    @property
    def identity(self) -> str: ...

    async def archive_key(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ArchiveKey:
    """A repository's identity and the secret its archives are signed with."""

    repository: str
    secret: bytes = dataclasses.field(repr=False)  # never in a log or a traceback

    @classmethod
    async def of(cls, holder: KeyHolder) -> ArchiveKey:
        return cls(holder.identity, await holder.archive_key())

    def sign(self, manifest: bytes) -> bytes:
        return hmac.new(self.secret, manifest, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class ArchiveSignature:
    """``manifest.sig`` as read: who says they signed, and the HMAC (not yet verified)."""

    repository: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class Provenance:
    """Whether an archive verifies as the given repository's own, and in words why (not)."""

    verified: bool
    reason: str

    def journal_detail(self) -> str:
        if self.verified:
            return f"archive verified: {self.reason}"
        return (
            f"archive not verified as this repository's: {self.reason}; "
            f"imported because {TRUST_FLAG} was given"
        )


@dataclass(frozen=True, slots=True)
class DefinitionEntry:
    """One VM in an archive: where it was, in which state, and its file."""

    pool: str
    host: str
    name: str
    uuid: str  # canonical: lower case, dashed
    state: str  # the VmState value at export
    kind: str  # KIND_LIBVIRT_XML or KIND_XEN_CFG
    member: str  # the file inside the archive
    sha256: str
    size_bytes: int

    @property
    def host_key(self) -> HostKey:
        return HostKey(self.pool, self.host)


@dataclass(frozen=True, slots=True)
class ExportProblem:
    """A host or (with ``vm``) one VM whose definition is not in the archive, and why."""

    pool: str
    host: str
    error: str
    vm: str | None = None
    uuid: str | None = None

    def __str__(self) -> str:
        where = f"{self.pool}/{self.host}"
        if self.vm is not None:
            where += f" {self.vm} ({self.uuid})"
        return f"{where}: {self.error}"


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    exported: int
    failures: tuple[ExportProblem, ...]  # VMs that failed, hosts lost during the export
    skipped: tuple[ExportProblem, ...]  # hosts that cannot report definitions
    unreachable: tuple[ExportProblem, ...] = ()  # hosts the snapshot had no answer from
    hosts: int = 0  # hosts the definitions came from
    signed_by: str | None = None  # the repository whose key signed it; None: unsigned

    @property
    def complete(self) -> bool:
        """Every VM of every host was exported (hosts without the capability aside)."""
        return not self.failures and not self.unreachable


@dataclass(frozen=True, slots=True)
class DefinitionArchive:
    """An archive whose manifest and every checksum were verified by ``read_archive``."""

    path: Path
    format_version: int
    created_at: str
    ovmtui_version: str
    entries: tuple[DefinitionEntry, ...]
    failures: tuple[ExportProblem, ...] = ()
    unreachable: tuple[ExportProblem, ...] = ()
    skipped: tuple[ExportProblem, ...] = ()
    signature: ArchiveSignature | None = None
    signature_error: str | None = None  # a manifest.sig that could not be read, and why
    manifest: bytes = dataclasses.field(default=b"", repr=False, compare=False)  # as signed

    def provenance(self, key: ArchiveKey) -> Provenance:
        """Whether this archive is ``key``'s repository's own, unchanged since it signed it."""
        if self.signature_error is not None:
            return Provenance(False, f"its {SIGNATURE} is unreadable ({self.signature_error})")
        if self.signature is None and self.format_version < 2:
            return Provenance(False, "not signed (made by an older ovmtui, before signatures)")
        if self.signature is None:
            return Provenance(False, f"not signed (its {SIGNATURE} is missing)")
        if self.signature.repository != key.repository:
            return Provenance(False, f"signed by another repository {self.signature.repository}")
        if not hmac.compare_digest(key.sign(self.manifest), self.signature.digest):
            return Provenance(
                False, "the signature does not match: the archive was changed after it was made"
            )
        return Provenance(True, f"signed by this repository {key.repository}")

    def find(self, vm: str) -> DefinitionEntry:
        """The entry of the VM named ``vm``, or whose UUID it is.

        Raises ``VmNotFound``, or ``ActionRefused`` when the name is ambiguous (listing the
        UUIDs to choose from).
        """
        wanted = _canonical_uuid(vm)
        by_uuid = wanted is not None
        matches = [e for e in self.entries if e.uuid == wanted] if by_uuid else []
        if not matches:
            by_uuid = False
            matches = [e for e in self.entries if e.name == vm]
        if not matches:
            raise VmNotFound(
                f"{self.path} holds no VM named {vm!r} nor with that UUID "
                f"({len(self.entries)} definitions in it)"
            )
        if len(matches) > 1:
            choices = ", ".join(f"{e.uuid} (on {e.pool}/{e.host})" for e in matches)
            if by_uuid:
                detail = f"UUID {wanted} is in {self.path} {len(matches)} times: {choices}"
            else:
                detail = f"{len(matches)} VMs named {vm!r} in {self.path}: {choices}; give its UUID"
            raise ActionRefused(detail, title="Ambiguous VM")
        return matches[0]

    def read(self, entry: DefinitionEntry) -> str:
        """The definition's text, its checksum verified again (the file may have changed
        since ``read_archive``). Blocking: call it in a thread. Raises ``ArchiveError``."""
        try:
            with tarfile.open(self.path, "r:gz") as tar:
                for member in _members(tar):
                    if member.name != entry.member:
                        continue
                    data = _member_bytes(self.path, tar, member, entry.size_bytes)
                    _check_sum(self.path, entry, data)
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ArchiveError(f"{self.path}: {entry.member}: not UTF-8 text") from None
        except FileNotFoundError:
            raise ArchiveError(f"{self.path}: no such file") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{self.path}: unreadable: {exc}") from None
        raise ArchiveError(f"{self.path}: {entry.member} is missing from the archive")


@dataclass(frozen=True, slots=True)
class ImportResult:
    entry: DefinitionEntry
    host: HostKey
    uuid: str  # what the host defined
    command: str
    provenance: Provenance  # whether the archive verified, or why not (then it was trusted)


@dataclass(frozen=True, slots=True)
class _Fetched:
    pool: str
    host: str
    vm: Vm
    text: str


# --------------------------------------------------------------------------- names


def default_definitions_dir(repository: Path) -> Path:
    """``definitions/`` beside the repository, as backups go to ``backups/``."""
    return repository.parent / "definitions"


def list_archives(directory: Path) -> list[Path]:
    """Oldest first (the names sort by time); partial files are never listed."""
    return stamped_files(directory, _PREFIX, _SUFFIX)


def safe_part(text: str) -> str:
    """``text`` as one harmless path component: safe characters only, no leading dot.

    ``../../etc/x`` becomes ``_.._etc_x`` and ``x; rm -rf /`` becomes ``x_rm_-rf_``: a
    component that cannot leave its folder, hide, or mean anything to a shell.
    """
    cleaned = _UNSAFE.sub("_", text).lstrip(".-")[:_MAX_PART]
    return cleaned or "_"


def member_name(pool: str, host: str, name: str, uuid: str, kind: str) -> str:
    extension = _EXTENSIONS.get(kind, ".txt")
    return f"{safe_part(pool)}/{safe_part(host)}/{safe_part(name)}--{safe_part(uuid)}{extension}"


def import_command(
    archive: Path, vm: str, host: HostKey | str, *, trust_archive: bool = False
) -> str:
    """The command line that imports ``vm``, every argument quoted (for the journal)."""
    words = ["ovmtui", "import-definition", str(archive), vm, "--host", str(host)]
    return shlex.join([*words, TRUST_FLAG] if trust_archive else words)


def definition_kind(text: str) -> str:
    """libvirt XML is an element; anything else a host reports is a Xen ``vm.cfg``."""
    return KIND_LIBVIRT_XML if text.lstrip().startswith("<") else KIND_XEN_CFG


def _canonical_uuid(text: str) -> str | None:
    try:
        return str(uuid_module.UUID(text.strip()))
    except ValueError:
        return None


# --------------------------------------------------------------------------- export


async def export_definitions(
    snapshot: EstateSnapshot,
    backend_for: Callable[[HostKey], Backend | None],
    directory: Path,
    *,
    clock: Callable[[], float] = time.time,
    concurrency: int = CONCURRENCY_DEFAULT,
    key: ArchiveKey | None = None,
) -> ExportResult:
    """Fetch the definition of every VM of every reachable host into one new archive.

    The archive is written with whatever could be read; what could not is in the result
    and in the manifest. With ``key`` (the repository's: ``await ArchiveKey.of(repo)``) it
    is signed; without, it is unsigned and imports only with ``--trust-archive``. Raises
    ``ArchiveError`` (and leaves no file) only when the archive itself cannot be written.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    created = clock()
    readers: dict[HostKey, DefinitionSource] = {}
    work: list[tuple[HostStatus, Vm]] = []
    failures: list[ExportProblem] = []
    unreachable: list[ExportProblem] = []
    skipped: list[ExportProblem] = []
    for host in snapshot.hosts:
        if host.reachable is not True:
            why = host.error or "it has not answered"
            unreachable.append(ExportProblem(host.pool, host.name, why))
            continue
        backend = backend_for(host.key)
        if backend is None:
            failures.append(ExportProblem(host.pool, host.name, "not in the estate"))
            continue
        if Capability.DEFINITION not in backend.capabilities or not isinstance(
            backend, DefinitionSource
        ):
            why = f"{backend.address} cannot report VM definitions"
            skipped.append(ExportProblem(host.pool, host.name, why))
            continue
        readers[host.key] = backend
        work.extend((host, vm) for vm in host.vms)

    fetched: list[_Fetched] = []
    lost: dict[HostKey, str] = {}  # hosts that stopped answering during the export
    pending = iter(work)

    async def fetch_some() -> None:
        # A few workers draining one iterator: 10,000 VMs are not 10,000 tasks.
        for host, vm in pending:
            if host.key in lost:
                continue
            try:
                text = await readers[host.key].definition(vm)
            except HostUnreachable as exc:
                # Every other call to it would wait for its own timeout: give it up.
                lost.setdefault(host.key, exc.message)
                continue
            except OvmError as exc:
                failures.append(ExportProblem(host.pool, host.name, exc.message, vm.name, vm.uuid))
                continue
            except Exception as exc:  # a backend bug must not lose the other VMs
                why = f"internal error: {type(exc).__name__}: {exc}"
                failures.append(ExportProblem(host.pool, host.name, why, vm.name, vm.uuid))
                continue
            fetched.append(_Fetched(host.pool, host.name, vm, text))

    await asyncio.gather(*(fetch_some() for _ in range(min(concurrency, max(len(work), 1)))))

    for gone, message in lost.items():
        status = snapshot.host(gone)
        total = len(status.vms) if status is not None else 0
        done = sum(1 for f in fetched if (f.pool, f.host) == (gone.pool, gone.name))
        why = f"stopped answering: {message}; {total - done} of {total} VMs not exported"
        failures.append(ExportProblem(gone.pool, gone.name, why))
    hosts = sum(1 for reader in readers if reader not in lost)

    abandon = threading.Event()
    try:
        path, count = await asyncio.to_thread(
            _write_archive,
            directory,
            created,
            fetched,
            _sorted(failures),
            _sorted(unreachable),
            _sorted(skipped),
            abandon,
            key,
        )
    except asyncio.CancelledError:
        abandon.set()  # the thread goes on: it must not publish, and removes its partial
        raise
    except OSError as exc:
        why = no_space_left(directory) if exc.errno == errno.ENOSPC else str(exc)
        raise ArchiveError(
            f"export to {directory} failed: {why}; no partial archive was left",
            title="Export failed",
        ) from None
    return ExportResult(
        path=path,
        exported=count,
        failures=_sorted(failures),
        skipped=_sorted(skipped),
        unreachable=_sorted(unreachable),
        hosts=hosts,
        signed_by=key.repository if key is not None else None,
    )


def _sorted(problems: Iterable[ExportProblem]) -> tuple[ExportProblem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.pool, p.host, p.vm or "", p.uuid or "")))


class _Abandoned(Exception):
    """The export was cancelled while the archive was being written."""


def _write_archive(
    directory: Path,
    created: float,
    fetched: list[_Fetched],
    failures: tuple[ExportProblem, ...],
    unreachable: tuple[ExportProblem, ...],
    skipped: tuple[ExportProblem, ...],
    abandon: threading.Event,
    key: ArchiveKey | None = None,
) -> tuple[Path, int]:
    """In a thread: checksums, manifest, then the archive, published atomically."""
    members: list[tuple[DefinitionEntry, bytes]] = []
    used: set[str] = set()
    for item in sorted(fetched, key=lambda f: (f.pool, f.host, f.vm.name, f.vm.uuid)):
        data = item.text.encode("utf-8")
        kind = definition_kind(item.text)
        name = member_name(item.pool, item.host, item.vm.name, item.vm.uuid, kind)
        base, dot, extension = name.rpartition(".")
        counter = 1
        while name.lower() in used:  # the same UUID twice on one host; case-blind disks
            counter += 1
            name = f"{base}-{counter}{dot}{extension}"
        used.add(name.lower())
        entry = DefinitionEntry(
            pool=item.pool,
            host=item.host,
            name=item.vm.name,
            uuid=item.vm.uuid,
            state=item.vm.state.value,
            kind=kind,
            member=name,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
        )
        members.append((entry, data))

    directory.mkdir(parents=True, exist_ok=True)
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    while True:  # never replace an archive: one taken in the same microsecond moves on
        final = directory / f"{_PREFIX}{moment.strftime(_STAMP)}{_SUFFIX}"
        partial = final.with_name(final.name + ".partial")
        if not final.exists() and not partial.exists():
            break
        moment += datetime.timedelta(microseconds=1)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "ovmtui_version": __version__,
        "vms": [_entry_json(entry) for entry, _ in members],
        "failures": [dataclasses.asdict(p) for p in failures],
        "unreachable": [_host_problem_json(p) for p in unreachable],
        "skipped": [_host_problem_json(p) for p in skipped],
    }
    manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
    signature = None
    if key is not None:
        signature = json.dumps(
            {
                "format": SIGNATURE_FORMAT,
                "algorithm": SIGNATURE_ALGORITHM,
                "repository": key.repository,
                "hmac": key.sign(manifest_bytes).hex(),
            },
            indent=1,
        ).encode("utf-8")
    mtime = int(created)
    try:
        with partial.open("xb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, MANIFEST, manifest_bytes, mtime)
                if signature is not None:
                    _add(tar, SIGNATURE, signature, mtime)
                for entry, data in members:
                    if abandon.is_set():
                        raise _Abandoned
                    _add(tar, entry.member, data, mtime)
            raw.flush()
            os.fsync(raw.fileno())
        if abandon.is_set():
            raise _Abandoned
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    fsync_directory(directory)  # the rename itself survives a power cut
    return final, len(members)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    tar.addfile(info, _BytesReader(data))


class _BytesReader:
    """A minimal file object over bytes (``io.BytesIO`` would copy them)."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(len(self._view), self._at + size)
        chunk = self._view[self._at : end].tobytes()
        self._at = end
        return chunk


def _entry_json(entry: DefinitionEntry) -> dict[str, Any]:
    return {
        "pool": entry.pool,
        "host": entry.host,
        "name": entry.name,
        "uuid": entry.uuid,
        "state": entry.state,
        "kind": entry.kind,
        "file": entry.member,
        "sha256": entry.sha256,
        "size_bytes": entry.size_bytes,
    }


def _host_problem_json(problem: ExportProblem) -> dict[str, Any]:
    return {"pool": problem.pool, "host": problem.host, "error": problem.error}


# --------------------------------------------------------------------------- reading


def read_archive(path: Path) -> DefinitionArchive:
    """Open an archive and verify it whole: its manifest, and every file against its
    checksum. Blocking (it reads the whole archive): call it in a thread from a loop.

    Raises ``ArchiveError`` naming the member at fault for an archive that is corrupt,
    foreign (not written by ovmtui, or by a newer one) or changed since it was written.
    """
    try:
        with tarfile.open(path, "r:gz") as tar:
            return _verify(path, tar)
    except FileNotFoundError:
        raise ArchiveError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArchiveError(f"{path}: a directory, not an archive") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(
            f"{path}: not a readable definitions archive (a .tar.gz): {exc}"
        ) from None


def _members(tar: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    """Members one by one as the stream reaches them (never a list of 10,000 at once)."""
    while True:
        member = tar.next()
        if member is None:
            return
        yield member


def _verify(path: Path, tar: tarfile.TarFile) -> DefinitionArchive:
    first = tar.next()
    if first is None:
        raise ArchiveError(f"{path}: an empty archive, not an ovmtui definitions archive")
    if first.name != MANIFEST:
        raise ArchiveError(
            f"{path}: its first member is {first.name!r}, not {MANIFEST}: "
            "not an ovmtui definitions archive"
        )
    raw = _member_bytes(path, tar, first, None, limit=_MAX_MANIFEST_BYTES)
    archive = _parse_manifest(path, raw)
    expected = {entry.member: entry for entry in archive.entries}
    if len(expected) != len(archive.entries):
        raise ArchiveError(f"{path}: {MANIFEST}: two VMs share one file name")
    if SIGNATURE in expected:
        raise ArchiveError(f"{path}: {MANIFEST}: a VM's file is named {SIGNATURE}")
    seen: set[str] = set()
    for index, member in enumerate(_members(tar)):
        if index == 0 and member.name == SIGNATURE:
            # Read, not judged: whether it is this repository's is for the import to say.
            signature, error = _read_signature(
                _member_bytes(path, tar, member, None, limit=_MAX_SIGNATURE_BYTES)
            )
            archive = dataclasses.replace(archive, signature=signature, signature_error=error)
            continue
        entry = expected.get(member.name)
        if entry is None:
            raise ArchiveError(
                f"{path}: {member.name!r} is not in its {MANIFEST}: "
                "the archive was changed after it was written"
            )
        if member.name in seen:
            raise ArchiveError(f"{path}: {member.name} is in the archive twice")
        seen.add(member.name)
        _check_sum(path, entry, _member_bytes(path, tar, member, entry.size_bytes))
    missing = sorted(expected.keys() - seen)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ArchiveError(f"{path}: {missing[0]}{more} listed in {MANIFEST} but missing")
    return archive


def _member_bytes(
    path: Path,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    size: int | None,
    *,
    limit: int = _MAX_MEMBER_BYTES,
) -> bytes:
    if not member.isreg():
        raise ArchiveError(f"{path}: {member.name} is not a regular file (a link or a device)")
    if member.size > limit:
        raise ArchiveError(f"{path}: {member.name} is too large ({member.size} bytes)")
    if size is not None and member.size != size:
        raise ArchiveError(
            f"{path}: {member.name} has {member.size} bytes, its manifest says {size}: "
            "it was changed after export"
        )
    stream: IO[bytes] | None = tar.extractfile(member)
    if stream is None:  # pragma: no cover - a regular member always has a stream
        raise ArchiveError(f"{path}: {member.name} cannot be read")
    with stream:
        return stream.read()


def _check_sum(path: Path, entry: DefinitionEntry, data: bytes) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, entry.sha256):
        raise ArchiveError(
            f"{path}: {entry.member}: checksum mismatch (sha256 {actual}, the manifest says "
            f"{entry.sha256}): the file was changed after export"
        )


def _read_signature(raw: bytes) -> tuple[ArchiveSignature | None, str | None]:
    """The signature, or why it cannot be read (then the archive is simply not verified)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(data, dict) or data.get("format") != SIGNATURE_FORMAT:
        return None, "not an ovmtui archive signature"
    if data.get("algorithm") != SIGNATURE_ALGORITHM:
        return (
            None,
            f"algorithm {data.get('algorithm')!r}; this ovmtui checks {SIGNATURE_ALGORITHM}",
        )
    repository, digest = data.get("repository"), data.get("hmac")
    if not isinstance(repository, str) or not repository:
        return None, "repository: expected a string"
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None, "hmac: expected 64 hexadecimal digits"
    return ArchiveSignature(repository, bytes.fromhex(digest)), None


def _parse_manifest(path: Path, raw: bytes) -> DefinitionArchive:
    where = f"{path}: {MANIFEST}"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveError(f"{where}: not an ovmtui definitions manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(f"{where}: format_version: expected a whole number")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"{where}: format {version} was written by a newer ovmtui "
            f"(this one reads up to {FORMAT_VERSION})"
        )
    vms = _list(data, "vms", where)
    entries = tuple(_entry(item, f"{where}: vms[{i}]") for i, item in enumerate(vms))
    return DefinitionArchive(
        path=path,
        format_version=version,
        created_at=_field(data, "created_at", where),
        ovmtui_version=_field(data, "ovmtui_version", where),
        entries=entries,
        failures=_problems(data, "failures", where, with_vm=True),
        unreachable=_problems(data, "unreachable", where),
        skipped=_problems(data, "skipped", where),
        manifest=raw,
    )


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ArchiveError(f"{where}: {key}: expected a list")
    return value


def _field(data: Any, key: str, where: str, *, optional: bool = False) -> str:
    if not isinstance(data, dict):
        raise ArchiveError(f"{where}: expected an object")
    value = data.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ArchiveError(f"{where}: {key}: expected a string")
    return value


def _entry(item: Any, where: str) -> DefinitionEntry:
    member = _field(item, "file", where)
    if len(member) > 1024 or not _MEMBER.fullmatch(member):
        raise ArchiveError(f"{where}: file {member!r} is not a safe relative path")
    uuid = _canonical_uuid(_field(item, "uuid", where))
    if uuid is None:
        raise ArchiveError(f"{where}: uuid: not a UUID")
    digest = _field(item, "sha256", where).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ArchiveError(f"{where}: sha256: expected 64 hexadecimal digits")
    size = item.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError(f"{where}: size_bytes: expected a whole number")
    return DefinitionEntry(
        pool=_field(item, "pool", where),
        host=_field(item, "host", where),
        name=_field(item, "name", where),
        uuid=uuid,
        state=_field(item, "state", where),
        kind=_field(item, "kind", where),
        member=member,
        sha256=digest,
        size_bytes=size,
    )


def _problems(
    data: Mapping[str, Any], key: str, where: str, *, with_vm: bool = False
) -> tuple[ExportProblem, ...]:
    problems = []
    for i, item in enumerate(_list(data, key, where)):
        at = f"{where}: {key}[{i}]"
        vm = _field(item, "vm", at, optional=True) if with_vm else ""
        uuid = _field(item, "uuid", at, optional=True) if with_vm else ""
        problems.append(
            ExportProblem(
                _field(item, "pool", at),
                _field(item, "host", at),
                _field(item, "error", at),
                vm or None,
                uuid or None,
            )
        )
    return tuple(problems)


# --------------------------------------------------------------------------- import


async def import_definition(
    archive: DefinitionArchive,
    vm: str,
    host: HostKey,
    snapshot: EstateSnapshot,
    backend_for: Callable[[HostKey], Backend | None],
    *,
    journal: ActionJournal | None,
    key: ArchiveKey,
    trust_archive: bool = False,
    known: EstateSnapshot | None = None,
    user: str | None = None,
    command: str | None = None,
) -> ImportResult:
    """Define ``vm`` (its name or UUID in ``archive``) on ``host`` again.

    Refused (``ActionRefused``, nothing defined) unless ``archive`` verifies as signed by
    ``key`` (this repository's) or ``trust_archive`` is given. Refused too while the VM's
    UUID is anywhere in the estate: running or defined on a host of ``snapshot``, or last
    known on a host that does not answer now (from ``snapshot``'s stale data, or ``known``:
    the repository's last-known estate). Refused too when ``host`` does not answer or cannot
    define VMs, and (``ArchiveError``) when the file no longer matches its checksum.

    Journaled like an action: written before anything else (a refusal is on the record
    too), completed with the result.
    """
    entry = archive.find(vm)
    command = command or import_command(archive.path, vm, host, trust_archive=trust_archive)
    provenance = archive.provenance(key)
    operations = Operations(user=user or current_user(), journal=lambda: journal)

    async def define() -> str:
        if not provenance.verified and not trust_archive:
            raise ActionRefused(
                f"{archive.path} is not verified as this repository's ({key.repository}): "
                f"{provenance.reason}. Nothing vouches that its definitions are what was "
                "exported; if you know where it comes from and that it is intact, run the "
                f"command again with {TRUST_FLAG}. Nothing was defined.",
                title="Archive not verified",
            )
        target = _target(entry, host, snapshot, backend_for)
        _refuse_if_present(entry, host, snapshot, known)
        text = await asyncio.to_thread(archive.read, entry)
        _check_definition(archive.path, entry, text)
        return await target.define(text)

    def outcome(defined: str) -> tuple[bool, str]:
        detail = provenance.journal_detail()
        if _canonical_uuid(defined) != entry.uuid:
            detail += f"; the host defined it with UUID {defined}"
        return True, detail

    operation = Operation(IMPORT_OPERATION, command, host.pool, host.name, entry.name, entry.uuid)
    done = await operations.run(operation, define, outcome=outcome)
    defined = done.value
    return ImportResult(entry, host, defined, command, provenance)


def _refused(message: str) -> ActionRefused:
    return ActionRefused(f"{message}. Nothing was defined.", title="Import refused")


def _target(
    entry: DefinitionEntry,
    host: HostKey,
    snapshot: EstateSnapshot,
    backend_for: Callable[[HostKey], Backend | None],
) -> DefinitionSink:
    status = snapshot.host(host)
    backend = backend_for(host)
    if status is None or backend is None:
        raise _refused(f"{host} is not in the estate")
    if status.reachable is not True or status.stale:
        why = status.error or "it has not answered"
        raise _refused(f"{host} is unreachable ({why})")
    if Capability.DEFINE not in backend.capabilities or not isinstance(backend, DefinitionSink):
        raise _refused(f"{host} ({backend.address}) cannot define VMs from a definition")
    if entry.kind != KIND_LIBVIRT_XML:
        raise _refused(
            f"{entry.name} was exported as {entry.kind}; this version defines libvirt XML only"
        )
    for vm in status.vms:
        if vm.name == entry.name and vm.uuid.lower() != entry.uuid:
            raise _refused(f"{host} already has another VM named {vm.name} ({vm.uuid})")
    return backend


def _refuse_if_present(
    entry: DefinitionEntry, target: HostKey, snapshot: EstateSnapshot, known: EstateSnapshot | None
) -> None:
    what = f"{entry.name} ({entry.uuid})"
    reasons: list[str] = []
    reported: set[HostKey] = set()
    for status in snapshot.hosts:
        vm = _vm_with(status, entry.uuid)
        if vm is None:
            continue
        reported.add(status.key)
        if status.reachable is True and not status.stale:
            if status.key == target:
                reasons.append(f"{what} is already defined on {target} ({vm.state.value})")
            elif vm.state.is_active:
                reasons.append(f"{what} runs on {status.key} ({vm.state.value})")
            else:
                reasons.append(
                    f"{what} is still defined on {status.key} ({vm.state.value}): two hosts "
                    "starting the same disks corrupt them; undefine it there first"
                )
        else:
            reasons.append(_last_known(what, status, vm))
    for old in known.hosts if known is not None else ():
        live = snapshot.host(old.key)
        # Hosts out of the estate are not asked about: removing a lost host from the estate
        # file is how an operator says it is gone for good.
        if old.key in reported or live is None or (live.reachable is True and not live.stale):
            continue
        vm = _vm_with(old, entry.uuid)
        if vm is not None:
            reasons.append(_last_known(what, dataclasses.replace(old, error=live.error), vm))
    if reasons:
        raise _refused("; ".join(reasons))


def _last_known(what: str, status: HostStatus, vm: Vm) -> str:
    why = status.error or "it has not answered"
    return (
        f"{what} was last known on {status.key} ({vm.state.value}), which is unreachable "
        f"({why}): it may still be there. If {status.key} is lost for good, remove it from "
        "the estate file and try again"
    )


def _vm_with(status: HostStatus, uuid: str) -> Vm | None:
    for vm in status.vms:
        if vm.uuid.lower() == uuid:
            return vm
    return None


def _check_definition(path: Path, entry: DefinitionEntry, text: str) -> None:
    """The file must define the VM its manifest entry names, not another one."""
    where = f"{path}: {entry.member}"
    try:
        # The archive's checksum is verified; expat refuses external entities and (2.4+)
        # entity expansion bombs.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise ArchiveError(f"{where}: not valid XML: {exc}") from None
    if root.tag != "domain":
        raise ArchiveError(f"{where}: expected a <domain>, found <{root.tag}>")
    uuid = _canonical_uuid(root.findtext("uuid") or "")
    name = root.findtext("name")
    if uuid != entry.uuid or name != entry.name:
        raise ArchiveError(
            f"{where}: defines {name} ({uuid}), but the manifest says {entry.name} ({entry.uuid})"
        )
