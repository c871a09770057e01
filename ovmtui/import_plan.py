"""What an import from a URL will do, decided before anything runs (pure, no I/O).

An import fetches a resource (an ISO, a template, a disk image) from an ``http://``,
``https://`` or ``ftp://`` URL into the pool's shared storage, in the folder of Oracle VM's
layout its kind says: ``iso_pool/<name>/<name>.iso``, ``seed_pool/<name>/`` (a template is a
folder: it comes as an archive and is unpacked there), ``sharedDisk/<name>.img``. It is
written under a ``.partial`` name beside its final place and renamed only when complete (and
matching its SHA-256 when one was given), so a reader of the storage never sees half a file
under a real name.

Everything an operator types is checked here, before a host is asked anything: the URL's
scheme and host, the name (no ``/``, no ``..``, nothing a shell would read), the SHA-256.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from typing import Final, Literal, get_args

from ovmtui.errors import ActionFailed, OvmError

ImportKind = Literal["iso", "template", "image"]
IMPORT_KINDS: Final[tuple[ImportKind, ...]] = get_args(ImportKind)
SCHEMES: Final = ("http", "https", "ftp")
# Oracle VM's folders of the shared storage, by what goes there.
FOLDERS: Final[dict[ImportKind, str]] = {
    "iso": "iso_pool",
    "template": "seed_pool",
    "image": "sharedDisk",
}
# What a template may come as (Oracle shipped .tgz); tar tells the compression itself.
ARCHIVE_SUFFIXES: Final = (
    ".tgz",
    ".tar.gz",
    ".tar",
    ".tar.bz2",
    ".tbz2",
    ".tbz",
    ".tar.xz",
    ".txz",
)
PARTIAL_SUFFIX: Final = ".partial"
# Letters, digits and . _ - + only: nothing a shell, a path or a libvirt volume name reads
# as anything but itself. Every argument is quoted anyway; this keeps names operators can
# type, and refuses what is more likely a mistake or an attack than a resource's name.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
MAX_NAME = 128
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class BadImport(OvmError):
    """What the operator asked for cannot be an import (exit status 2 in a shell)."""

    title = "Bad import"


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """Where one import goes: all paths absolute, under the pool's shared storage."""

    url: str
    kind: ImportKind
    name: str
    storage: str  # the pool's shared storage (``/OVS``)
    folder: str  # the folder the import creates (``/OVS/iso_pool/<name>``) or fills
    final: str  # the file (ISO, image) or folder (template) it ends as
    partial: str  # what is written while it downloads
    sha256: str | None = None  # lower-case hex, when the operator gave one
    archive: bool = False  # a template's archive, unpacked into ``final``

    @property
    def unpacking(self) -> str:
        """Where an archive is unpacked before it is renamed into place."""
        return self.final + ".unpacking"

    @property
    def leftovers(self) -> tuple[str, ...]:
        """Every path the import may have written before it ended, for its clean-up."""
        return (self.partial, self.unpacking) if self.archive else (self.partial,)

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.url).scheme.lower()


def check_url(url: str) -> str:
    """``url`` when it is an http, https or ftp URL with a host; else ``BadImport`` says why."""
    text = url.strip()
    if not text:
        raise BadImport("no URL given")
    if any(ord(c) < 0x21 or c == "\x7f" for c in text):
        raise BadImport(f"{url!r}: a URL with spaces or control characters (encode them: %20)")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadImport(f"{text}: not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"'{scheme}'" if scheme else "none"
        raise BadImport(
            f"{text}: the scheme is {shown}; an import takes http://, https:// or ftp://"
        )
    if not parts.hostname:
        raise BadImport(f"{text}: no host in the URL")
    if port == 0:
        raise BadImport(f"{text}: port 0")
    if not parts.path or parts.path.endswith("/"):
        raise BadImport(f"{text}: the URL names a folder, not a file")
    return text


def check_name(name: str) -> str:
    """``name`` when it can name a resource; else ``BadImport`` says what is wrong with it."""
    if not name:
        raise BadImport("an empty name")
    if "/" in name or "\\" in name:
        raise BadImport(f"{name!r}: a name cannot hold '/' (it is one file or folder)")
    if ".." in name:
        raise BadImport(f"{name!r}: a name cannot hold '..'")
    if len(name) > MAX_NAME:
        raise BadImport(f"{name[:20]!r}…: a name of {len(name)} characters (at most {MAX_NAME})")
    if not _NAME.fullmatch(name):
        odd = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._+-"))})
        why = (
            f"characters a shell reads ({' '.join(repr(c) for c in odd)})"
            if odd
            else "a first character that is not a letter or a digit"
        )
        raise BadImport(f"{name!r}: {why}; use letters, digits and . _ - + only")
    if name.endswith(PARTIAL_SUFFIX) or name.endswith(".unpacking"):
        raise BadImport(f"{name!r}: ends as ovmtui's unfinished downloads do")
    return name


def check_sha256(text: str | None) -> str | None:
    """The SHA-256 in lower case, None when none was given; ``BadImport`` when malformed."""
    if text is None or not text.strip():
        return None
    digest = text.strip()
    if not _SHA256.fullmatch(digest):
        raise BadImport(f"{text!r}: a SHA-256 is 64 hexadecimal digits")
    return digest.lower()


def archive_suffix(file_name: str) -> str | None:
    """The archive suffix ``file_name`` ends with (``.tgz``), or None."""
    lower = file_name.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lower.endswith(s)), None)


def name_from_url(url: str, kind: ImportKind) -> str:
    """The name an import takes when none is given: the URL's file name, less the
    extension of its kind (``.iso``, an archive's, ``.img``)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    base = posixpath.basename(path)
    suffix = archive_suffix(base) if kind == "template" else None
    if suffix is not None:
        return base[: -len(suffix)]
    stem, ext = posixpath.splitext(base)
    if kind == "iso" and ext.lower() == ".iso":
        return stem
    if kind == "image" and ext.lower() == ".img":
        return stem
    return base


def plan_import(
    url: str,
    kind: str,
    storage: str | None,
    *,
    name: str | None = None,
    sha256: str | None = None,
) -> ImportPlan:
    """The plan of one import, every input checked; raises ``BadImport`` saying why not."""
    checked_url = check_url(url)
    if kind not in IMPORT_KINDS:
        raise BadImport(f"kind {kind!r}: one of {', '.join(IMPORT_KINDS)}")
    kind_: ImportKind = kind
    if not storage:
        raise BadImport("the pool has no shared_storage in the estate file: nowhere to import to")
    if not storage.startswith("/"):
        raise BadImport(f"the pool's shared_storage {storage!r} is not an absolute path")
    root = posixpath.normpath(storage)
    digest = check_sha256(sha256)
    if name is not None:
        resource = check_name(name)
    else:
        try:
            resource = check_name(name_from_url(checked_url, kind_))
        except BadImport as exc:
            raise BadImport(f"{exc.message}: give the resource a name (--name)") from None
    folder = posixpath.join(root, FOLDERS[kind_])
    if kind_ == "iso":
        file_name = resource if resource.lower().endswith(".iso") else f"{resource}.iso"
        folder = posixpath.join(folder, resource)
        final = posixpath.join(folder, file_name)
        return ImportPlan(
            checked_url, kind_, resource, root, folder, final, final + PARTIAL_SUFFIX, digest
        )
    if kind_ == "image":
        file_name = resource if posixpath.splitext(resource)[1] else f"{resource}.img"
        final = posixpath.join(folder, file_name)
        return ImportPlan(
            checked_url, kind_, resource, root, folder, final, final + PARTIAL_SUFFIX, digest
        )
    url_file = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(checked_url).path))
    if archive_suffix(url_file) is None:
        raise BadImport(
            f"{checked_url}: a template is a folder and is imported as an archive "
            f"({', '.join(ARCHIVE_SUFFIXES)}), as Oracle shipped them"
        )
    final = posixpath.join(folder, resource)
    return ImportPlan(
        checked_url,
        kind_,
        resource,
        root,
        folder,
        final,
        final + PARTIAL_SUFFIX,
        digest,
        archive=True,
    )


def bad_member(member: str) -> str | None:
    """Why an archive's member may not be unpacked (an absolute path, a ``..``), or None."""
    if member.startswith("/"):
        return f"{member!r} is an absolute path"
    if ".." in member.split("/"):
        return f"{member!r} climbs out of the folder ('..')"
    return None


def strip_prefix(members: list[str]) -> int:
    """How many leading folders tar strips so that a template's ``vm.cfg`` lands at the top
    of ``seed_pool/<name>/``: 1 when every member is under one folder (as Oracle's archives
    are: ``OVM_EL5U3_X86_PVM_10GB/vm.cfg``), else 0."""
    names = [m.removeprefix("./").strip("/") for m in members]
    names = [n for n in names if n and n != "."]
    tops = {n.split("/", 1)[0] for n in names}
    return 1 if len(tops) == 1 and any("/" in n for n in names) else 0


class ImportFailed(ActionFailed):
    """An import that ran and did not complete (the URL, the storage, the checksum), with
    why; nothing it wrote is left behind."""

    title = "Import failed"


@dataclass(frozen=True, slots=True)
class Imported:
    """A completed import: where it is, its size, its SHA-256 when it was checked, and what
    fetched it (``curl``, ``wget`` on the host; ``ovmtui`` itself for a libvirt volume)."""

    path: str
    size_bytes: int
    sha256: str | None
    tool: str


def flat_plan(plan: ImportPlan) -> ImportPlan:
    """The plan for a storage that holds files only, not folders (a libvirt ``dir`` pool per
    folder of the layout: its volumes are its files): the file straight in its kind's folder
    (``iso_pool/<name>.iso``). A template's archive keeps its plan: its folder
    ``seed_pool/<name>/`` is made as a storage pool of its own (``libvirt_template``)."""
    if plan.archive:
        return plan
    folder = posixpath.join(plan.storage, FOLDERS[plan.kind])
    final = posixpath.join(folder, posixpath.basename(plan.final))
    return ImportPlan(
        plan.url,
        plan.kind,
        plan.name,
        plan.storage,
        folder,
        final,
        final + PARTIAL_SUFFIX,
        plan.sha256,
    )
