"""``vm.cfg`` editing: one entry added to or removed from the ``disk = [...]`` list.

Only the bytes of that list change: comments, order, quoting, line endings and every other
statement stay as they were, so that an operator's diff shows one line and ``xm create``
reads the rest exactly as before. The list is found with the reader's own statement scanner
(:mod:`.vm_cfg`) and its elements' positions come from Python's parser. A file this module
cannot edit with certainty is refused (``CfgEditRefused``) and nothing is written: no
``disk`` list that is a plain list of strings (``'phy:sda%d' % vmid``), two ``disk``
statements, an edit that would not read back as intended.

Every edit is checked by reading the result back (``parse_vm_cfg``): the new list must be
the old one with exactly that entry added or removed, and every other setting unchanged.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ovmtui.backend.xen_parse.devices import _disk_mode, _disk_source, _disk_target
from ovmtui.backend.xen_parse.vm_cfg import _cfg_statements, parse_vm_cfg
from ovmtui.errors import ActionRefused

QUOTE = "'"
_DISK_STATEMENT = re.compile(r"disk\s*=(?!=)")


class CfgEditRefused(ActionRefused):
    """A vm.cfg this module will not edit; nothing was changed."""

    title = "vm.cfg not edited"


@dataclass(frozen=True, slots=True)
class _Element:
    value: str
    start: int  # offsets in the whole text
    end: int


@dataclass(frozen=True, slots=True)
class _DiskList:
    open_bracket: int  # offset of "["
    close_bracket: int  # offset of "]"
    elements: tuple[_Element, ...]


def xen_disk_entry(path: str, target: str, *, read_only: bool, shareable: bool) -> str:
    """The xm ``disk`` entry of a file: ``file:/OVS/sharedDisk/q.img,xvdb,w!``."""
    mode = "r" if read_only else ("w!" if shareable else "w")
    return f"file:{path},{target},{mode}"


def entry_source(entry: str) -> tuple[str | None, str | None, bool, bool]:
    """(path, target, read_only, shareable) of an xm disk entry; (None, …) for xl's
    ``key=value`` spelling, which this module does not write."""
    parts = [part.strip() for part in entry.split(",")]
    if len(parts) < 3 or "=" in parts[0]:
        return None, None, False, False
    read_only, shareable = _disk_mode(parts[-1])
    target, _device = _disk_target(parts[-2])
    return _disk_source(",".join(parts[:-2])), target, read_only, shareable


def disk_entries(text: str) -> tuple[str, ...]:
    """The entries of the ``disk`` list (empty when there is none). Raises ``CfgEditRefused``
    when the list is not a plain list of strings."""
    found = _find(text)
    return () if found is None else tuple(e.value for e in found.elements)


def with_disk_added(text: str, entry: str) -> str:
    """``text`` with ``entry`` appended to its ``disk`` list (a new ``disk = [...]`` line at
    the end when it has none). Raises ``CfgEditRefused``, changing nothing."""
    found = _find(text)
    path, target, _ro, _shared = entry_source(entry)
    for existing in () if found is None else found.elements:
        other_path, other_target, _r, _s = entry_source(existing.value)
        if path is not None and other_path == path:
            raise CfgEditRefused(f"the disk list holds {path} already: {existing.value!r}")
        if target is not None and other_target == target:
            raise CfgEditRefused(f"device {target} is taken already: {existing.value!r}")
    if found is None:
        newline = "\r\n" if "\r\n" in text else "\n"
        joint = "" if not text or text.endswith("\n") else newline
        edited = f"{text}{joint}disk = [{_quoted(entry, QUOTE)}]{newline}"
    else:
        elements = found.elements
        quote = _quote_of(text, elements)
        if not elements:
            at = found.open_bracket + 1
            insert = _quoted(entry, quote)
        else:
            last = elements[-1]
            at = last.end
            line_start = text.rfind("\n", 0, last.start) + 1
            if line_start > found.open_bracket:
                # One element a line: the new one on a line of its own, indented alike.
                indent = text[line_start : last.start]
                indent = indent if not indent.strip() else " " * len(indent)
                newline = "\r\n" if text[: last.start].endswith("\r\n" + indent) else "\n"
                insert = f",{newline}{indent}{_quoted(entry, quote)}"
            else:
                insert = f", {_quoted(entry, quote)}"
        edited = text[:at] + insert + text[at:]
    before = disk_entries(text)
    _check(text, edited, (*before, entry))
    return edited


def with_disk_removed(text: str, path: str) -> tuple[str, str]:
    """``text`` without the ``disk`` entry of ``path``, and that entry. Raises
    ``CfgEditRefused`` (no such entry, or several), changing nothing."""
    found = _find(text)
    elements = () if found is None else found.elements
    matches = [i for i, e in enumerate(elements) if entry_source(e.value)[0] == path]
    if not matches:
        raise CfgEditRefused(f"the disk list does not hold {path}")
    if len(matches) > 1:
        raise CfgEditRefused(f"the disk list holds {path} {len(matches)} times: edit it by hand")
    index = matches[0]
    element = elements[index]
    if index > 0:
        previous = elements[index - 1]
        comma = text.index(",", previous.end)
        gap = text[comma + 1 : element.start]
        if "#" in gap:
            # A comment between them stays: the comma goes, and the element with the blanks
            # before it on its line.
            line_start = max(text.rfind("\n", 0, element.start) + 1, comma + 1)
            start = line_start if not text[line_start : element.start].strip() else element.start
            edited = text[:comma] + text[comma + 1 : start] + text[element.end :]
        else:
            edited = text[:comma] + text[element.end :]
    elif len(elements) > 1:
        edited = text[: element.start] + text[elements[1].start :]
    else:
        edited = text[: element.start] + text[element.end :]
    remaining = tuple(e.value for i, e in enumerate(elements) if i != index)
    _check(text, edited, remaining)
    return edited, element.value


def _find(text: str) -> _DiskList | None:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    scanned = [line.rstrip("\r") for line in lines]
    statements = [
        (start, chunk)
        for start, chunk in _cfg_statements(scanned)
        if _DISK_STATEMENT.match(chunk[0]) is not None
    ]
    if not statements:
        return None
    if len(statements) > 1:
        lines_at = ", ".join(str(start) for start, _chunk in statements)
        raise CfgEditRefused(f"the disk list is set {len(statements)} times (lines {lines_at})")
    start, chunk = statements[0]
    source = "\n".join(chunk)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise CfgEditRefused(f"line {start}: the disk statement does not parse: {exc}") from None
    node = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.List):
        raise CfgEditRefused(
            f"line {start}: disk is not a plain list ('disk = [...]'): edit it by hand"
        )

    def offset(lineno: int, col: int) -> int:
        # ast columns count UTF-8 bytes; the text is edited in characters.
        line = chunk[lineno - 1]
        return offsets[start - 2 + lineno] + len(line.encode()[:col].decode(errors="replace"))

    elements: list[_Element] = []
    for item in node.value.elts:
        if not isinstance(item, ast.Constant) or not isinstance(item.value, str):
            raise CfgEditRefused(
                f"line {start}: a disk entry is not a plain string "
                f"({ast.get_source_segment(source, item) or '?'}): edit it by hand"
            )
        assert item.end_lineno is not None and item.end_col_offset is not None
        elements.append(
            _Element(
                item.value,
                offset(item.lineno, item.col_offset),
                offset(item.end_lineno, item.end_col_offset),
            )
        )
    value = node.value
    assert value.end_lineno is not None and value.end_col_offset is not None
    return _DiskList(
        offset(value.lineno, value.col_offset),
        offset(value.end_lineno, value.end_col_offset) - 1,
        tuple(elements),
    )


def _quote_of(text: str, elements: tuple[_Element, ...]) -> str:
    if elements:
        first = text[elements[-1].start : elements[-1].end].lstrip("uUrRbB")
        if first[:1] == '"':
            return '"'
    return QUOTE


def _quoted(entry: str, quote: str) -> str:
    if quote in entry or "\\" in entry or "\n" in entry or "\r" in entry:
        return repr(entry)
    return f"{quote}{entry}{quote}"


def _check(before: str, after: str, expected: tuple[str, ...]) -> None:
    """The edit reads back as meant: the new disk list, every other setting as it was."""
    old, new = parse_vm_cfg(before).value, parse_vm_cfg(after).value
    old.pop("disk", None)
    disks = new.pop("disk", None)
    listed = tuple(disks) if isinstance(disks, list | tuple) else ()
    if listed != expected or old != new:
        raise CfgEditRefused("the edited vm.cfg would not read back as intended: not written")
