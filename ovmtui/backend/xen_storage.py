"""A pool's shared storage read and changed over SSH: the listing of Oracle VM's layout in
one command, reading a small file, and deleting an entry.

The listing is one ``sh -c`` over the open connection, whatever the number of files: one
``find`` over the layout's folders prints a NUL-separated record per file or folder (type,
apparent size, 512-byte blocks, mtime, path), then the ISO candidates' signatures are read in
an in-script loop (a ``dd`` per file of ``iso_pool`` only: ISOs are few), then the first four
bytes of every regular file in one ``head`` (``head -q -c 4``, several files per process) for
the qcow2 magic. The pool's shared storage is an argument of the script (``$1``), never part
of it; paths come back NUL-terminated, so a name with spaces, a newline, ``;`` or any byte
stays one name. What does not read as such a stream is a ``ParseError``.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ovmtui.backend.base import CommandOutput
from ovmtui.errors import ActionFailed, ParseError
from ovmtui.storage_model import (
    FOLDERS,
    KIND_OF_FOLDER,
    DiskFormat,
    ResourceKind,
    StorageEntry,
    StorageScan,
)

QCOW2_MAGIC = b"QFI\xfb"
ISO_OFFSET = 32769
ISO_MAGIC = b"CD001"

# The records: D (an entry: type, size, blocks, mtime, path), M (a folder of the layout that
# is not there), I (a path whose ISO signature is there), then H and, to the end, the first
# bytes of every regular file in the order of their D records.
_SCRIPT = r"""
LC_ALL=C; export LC_ALL
cd -- "$1" 2>/dev/null || { echo "cannot enter $1" >&2; exit 3; }
shift
present=
for d; do
  if [ -d "$d" ]; then present="$present $d"; else printf 'M\0%s\0' "$d"; fi
done
[ -n "$present" ] || exit 0
# $present holds only the layout's fixed folder names (no spaces): split on purpose.
find $present -mindepth 1 -maxdepth 2 -printf 'D\0%y\0%s\0%b\0%T@\0%p\0' || exit 4
if [ -d iso_pool ]; then
  find iso_pool -mindepth 1 -maxdepth 2 -type f -exec sh -c '
    for f; do
      s=$(dd if="$f" bs=1 skip=32769 count=5 2>/dev/null)
      [ "$s" = CD001 ] && printf "I\0%s\0" "$f"
    done' sh {} + 2>/dev/null
fi
printf 'H\0'
find $present -mindepth 1 -maxdepth 2 -type f -print0 | xargs -0 -r head -q -c 4 -- 2>/dev/null
exit 0
"""

STORAGE_TIMEOUT_S = 60.0


def scan_argv(root: str) -> list[str]:
    """The listing's command: the script, then the shared storage and the folders as its
    arguments (``sh -c SCRIPT sh ROOT FOLDER…``)."""
    return ["sh", "-c", _SCRIPT, "sh", root, *FOLDERS.values()]


def scan_command(root: str) -> str:
    """What the journal and the screen show of the listing (the script elided)."""
    return shlex.join(["find", root, *FOLDERS.values()]) + " (one sh -c over SSH)"


@dataclass(frozen=True, slots=True)
class _Record:
    type: str
    size: int
    blocks: int
    mtime: float
    path: str  # relative to the shared storage: "sharedDisk/q.img"


def parse_scan(output: CommandOutput, root: str) -> StorageScan:
    """The entries of the layout from the listing's output (see the module doc)."""
    if output.exit_status != 0:
        said = output.stderr.decode("utf-8", "replace").strip() or f"exit {output.exit_status}"
        raise ActionFailed(f"listing {root} failed: {said}", title="Storage not read")
    data = output.stdout
    records: list[_Record] = []
    missing: list[str] = []
    isos: set[str] = set()
    heads = b""
    pos = 0

    def field() -> str:
        nonlocal pos
        end = data.find(b"\0", pos)
        if end < 0:
            raise ParseError(f"listing of {root}: a record is cut short at byte {pos}")
        text = data[pos:end].decode("utf-8", "surrogateescape")
        pos = end + 1
        return text

    while pos < len(data):
        tag = field()
        if tag == "D":
            kind, size, blocks, mtime, path = (field() for _ in range(5))
            try:
                records.append(_Record(kind, int(size), int(blocks), float(mtime), path))
            except ValueError:
                raise ParseError(
                    f"listing of {root}: unreadable record for {path!r}: "
                    f"size {size!r}, blocks {blocks!r}, mtime {mtime!r}"
                ) from None
        elif tag == "M":
            missing.append(field())
        elif tag == "I":
            isos.add(field())
        elif tag == "H":
            heads = data[pos:]
            break
        else:
            raise ParseError(f"listing of {root}: unexpected record {tag[:20]!r} at byte {pos}")
    formats, warnings = _formats(records, heads, root)
    return StorageScan(_entries(records, formats, isos, root), tuple(missing), warnings)


def _formats(
    records: Sequence[_Record], heads: bytes, root: str
) -> tuple[dict[str, DiskFormat], tuple[str, ...]]:
    """qcow2 or raw for each regular file, from the first bytes ``head`` printed (up to four
    a file, fewer for a shorter file). A file that changed size between the two reads
    shifts them: then no format is told rather than a wrong one."""
    files = [r for r in records if r.type == "f"]
    if sum(min(4, r.size) for r in files) != len(heads):
        return {}, (f"{root}: files changed while they were listed; formats not told",)
    formats: dict[str, DiskFormat] = {}
    offset = 0
    for record in files:
        length = min(4, record.size)
        magic = heads[offset : offset + length]
        offset += length
        if length:
            formats[record.path] = DiskFormat.QCOW2 if magic == QCOW2_MAGIC else DiskFormat.RAW
    return formats, ()


def _entries(
    records: Sequence[_Record], formats: dict[str, DiskFormat], isos: set[str], root: str
) -> tuple[StorageEntry, ...]:
    """The layout's entries: what lies directly in each folder; a folder's sizes are the sum
    of its files', its format that of its image (an ISO folder's ISO, a single disk's)."""
    tops: dict[str, _Record] = {}
    inner: dict[str, list[_Record]] = {}
    for record in records:
        parts = record.path.split("/")
        if len(parts) == 2:
            tops[record.path] = record
        elif len(parts) == 3:
            inner.setdefault("/".join(parts[:2]), []).append(record)
    base = root.rstrip("/") or "/"
    entries: list[StorageEntry] = []
    for path, top in tops.items():
        folder, name = path.split("/")
        kind = KIND_OF_FOLDER.get(folder)
        if kind is None:
            continue
        full = posixpath.join(base, path)
        if top.type != "d":
            fmt = DiskFormat.ISO if path in isos else formats.get(path)
            entries.append(
                StorageEntry(kind, name, full, top.size, top.blocks * 512, fmt, top.mtime)
            )
            continue
        children = inner.get(path, [])
        files = [c for c in children if c.type == "f"]
        entries.append(
            StorageEntry(
                kind,
                name,
                full,
                sum(c.size for c in files),
                sum(c.blocks for c in files) * 512 + top.blocks * 512,
                _folder_format(kind, files, formats, isos),
                top.mtime,
                is_dir=True,
                has_vm_cfg=any(c.path.rsplit("/", 1)[-1] == "vm.cfg" for c in files),
            )
        )
    return tuple(entries)


def _folder_format(
    kind: ResourceKind,
    files: Sequence[_Record],
    formats: dict[str, DiskFormat],
    isos: set[str],
) -> DiskFormat:
    if any(f.path in isos for f in files):
        return DiskFormat.ISO
    if kind is ResourceKind.SHARED_DISK:
        images = [formats[f.path] for f in files if f.path in formats]
        if len(images) == 1:
            return images[0]
    return DiskFormat.DIR


def read_file_argv(path: str, max_bytes: int) -> list[str]:
    """Up to ``max_bytes`` of a file (a template's vm.cfg, to parse before registering)."""
    return ["head", "-c", str(max_bytes), "--", path]


def delete_argv(entry: StorageEntry) -> list[str]:
    """Remove an entry: ``rm -f`` a file, ``rm -rf`` a folder; ``--`` first, one argument."""
    return ["rm", "-rf" if entry.is_dir else "-f", "--", entry.path]


def within(root: str, path: str) -> bool:
    """Whether ``path`` lies strictly inside one of the layout's folders of ``root``: what
    ovmtui ever deletes (never the storage itself, nor a folder of the layout)."""
    base = posixpath.normpath(root)
    normal = posixpath.normpath(path)
    if normal != path.rstrip("/") or ".." in path.split("/"):
        return False
    relative = posixpath.relpath(normal, base)
    parts = relative.split("/")
    return len(parts) >= 2 and parts[0] in KIND_OF_FOLDER and not relative.startswith("..")
