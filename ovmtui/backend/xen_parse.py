"""Pure parsers of what the Xen toolstacks print: no I/O, no ssh, just text in, domain out.

Formats, and the quirks met in real captures (tests/data/xen/ holds them):

``xm list`` / ``xl list`` (tables)
    ``Name ID Mem VCPUs State Time(s)``, optionally followed by ``Console`` (Xen 2),
    ``UUID Reason-Code Security Label`` (``xl list -v``), ``Claimed``, ``Cpupool``. Columns
    are separated by spaces *or tabs* (xl prints ``VCPUs\\tState\\tTime(s)``), the name
    column is padded to 40 characters but a longer name (an FQDN) simply pushes the rest of
    the row right, copies from documents collapse or indent the spacing, and a header may be
    missing altogether. Rows are therefore read by token, anchored on the state flags, not by
    position. An inactive domain managed by xend has a blank ID and State. Names are not
    unique keys: ``(null)`` for a dying zombie and ``Domain-<N>`` when xenstore lost the name.
    Xen 2's table has a ``CPU`` column (where the domain runs, not how many VCPUs it has).

State flags
    xm/xl print six positional flags ``rbps?d``: running, blocked, paused, shutdown, the
    shutdown reason (xl: ``r``eboot, ``s``uspend, ``c``rash, ``w``atchdog, ``S``oft reset;
    xend: ``c`` for crashed) and dying. Xen 2 printed five (no ``d``). ``xentop`` uses the
    reverse order ``dsbcpr``; both layouts are recognised, they never agree on a letter's
    place except for ``------``.

``xm list -l`` (SXP, xend)
    ``(domain (domid 3) (name web01) (memory 1024) ... (device (vbd ...)))``, one
    top-level list per domain, pretty-printed or on one line. Strings are bare atoms or
    single/double quoted (``''`` is an empty value, so is ``(bootloader )``), long values
    are wrapped onto a line of their own, ``(null)`` appears where C printed a NULL. Published
    outputs are truncated (``......``) or miss their last ``)``; the reader keeps every list
    that closed and closes the rest itself, reporting it. Memory is in MiB, CPU time and
    start time in seconds. A poll reads this for every host every few seconds: a scanner
    reads clean output without building the tree (about a third faster), and hands anything
    unusual to the tree reader, which is the reference and the one that reports. Old ``xl``
    prints a flatter SXP dialect for ``xl list -l`` (``max_memkb``, ``target_memkb``,
    ``max_vcpus``, disks as ``(tap (physpath ..) (virtpath ..))``, MACs without colons, and
    for a PV guest one ")" too many that closes the domain before its devices); the same
    readers serve it.

``xl list -l`` (JSON)
    A list of ``{"domid": N, "config": <libxl_domain_config>}``. libxl leaves out fields at
    their default value (``"is_cdrom"`` and ``"readwrite"`` are absent when 0), memory is in
    KiB and there is no state: callers merge it from ``xl list`` (see
    :func:`merge_table_rows`). Documents abridge it with ``...``; a tolerant reader keeps
    what it can when the strict one refuses.

``xm info`` / ``xl info``
    ``key<padding>: value`` lines. A long value may continue on the next, key-less line
    (the man page wraps them), values may be empty or truncated by Xen's fixed-size
    buffers, and ``xl info -n`` adds tables after ``cpu_topology``/``numa_info``.

``vm.cfg`` (xm/xl domain configuration)
    Python syntax: ``name = 'x'``, ``disk = ['file:/img,xvda,w']``, ``u''`` literals, values
    continued over lines inside brackets, comments. xm evaluated it with Python, so old
    examples hold ``def``, calls and ``"VM%d" % vmid``: each assignment is read with
    ``ast.literal_eval`` on its own, never evaluated, and whatever is not a literal is
    reported and left out.

Every parser keeps what it could read and reports each unreadable part as a
:class:`ParseIssue` with its line; an output that is an ``Error:`` message (xm prints its
usage text after it) is one issue and no data. A value the output does not give is
``None``, never a guess; a domain without a name or a valid UUID is left out (and
reported) rather than given an invented key. UUIDs come out in one form (lower case,
dashed) whether written with dashes (xend) or without (vm.cfg, libvirt's data), so a running
domain and its vm.cfg match; MACs come out lower case with colons.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, NamedTuple, Protocol, TypeAlias, TypeVar

from ovmtui.model import Disk, HostFacts, Nic, Vm, VmState

T_co = TypeVar("T_co", covariant=True)  # frozen: a Parsed[Sub] is a Parsed[Base]

_MAX_ISSUE_TEXT = 200


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """One part of an output that could not be read."""

    command: str  # e.g. "xm list -l"
    line: int  # 1-based line in the text given to the parser; 0 if not line-bound
    text: str  # the offending line, truncated
    reason: str  # human words: "unbalanced parenthesis", "memory is not a number" ...

    def __str__(self) -> str:
        where = f"{self.command}, line {self.line}" if self.line else self.command
        return f"{where}: {self.reason}: {self.text}" if self.text else f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T_co]):
    """What a parser read, and what it could not."""

    value: T_co
    issues: tuple[ParseIssue, ...] = ()


@dataclass(frozen=True, slots=True)
class XenDomain:
    """A domain of a long listing: a VM, or the host itself (dom0)."""

    vm: Vm
    is_dom0: bool  # the host itself: callers leave it out of the VMs


class TableRow(NamedTuple):
    """One row of ``xm list`` / ``xl list``: fewer facts than a Vm, and no UUID unless -v.

    A named tuple: every quick poll of every host reads fifty of these, and a tuple is
    built in a third of a frozen dataclass's time.
    """

    name: str
    domid: int | None
    memory_mib: int | None
    vcpus: int | None
    state: VmState
    cpu_time_s: float | None
    uuid: str | None = None  # only `xl list -v` prints it

    @property
    def is_dom0(self) -> bool:
        return self.domid == 0 or self.name == "Domain-0"


@dataclass(frozen=True, slots=True)
class VmConfig:
    """The facts a vm.cfg gives about a VM (which may not be running)."""

    name: str | None = None
    uuid: str | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    max_memory_mib: int | None = None
    os_type: str | None = None
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    simple_name: str | None = None  # Oracle VM's OVM_simple_name: the name people know


class _Issues:
    """Collects issues for one parse; splits the text into lines only if one is reported."""

    __slots__ = ("_lines", "command", "items", "text")

    def __init__(self, command: str, text: str) -> None:
        self.command = command
        self.text = text
        self.items: list[ParseIssue] = []
        self._lines: list[str] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    def add(self, line: int, reason: str, text: str | None = None) -> None:
        if text is None:
            lines = self.lines
            text = lines[line - 1] if 0 < line <= len(lines) else ""
        self.items.append(ParseIssue(self.command, line, text.strip()[:_MAX_ISSUE_TEXT], reason))

    def find_line(self, needle: str, start: int = 1) -> int:
        """The first line from ``start`` on that holds ``needle`` (``start`` if none does)."""
        for number, line in enumerate(self.lines[start - 1 :], start):
            if needle in line:
                return number
        return start

    def freeze(self) -> tuple[ParseIssue, ...]:
        return tuple(sorted(self.items, key=lambda issue: issue.line))  # stable: found order


def _cut_at_error(text: str, issues: _Issues) -> str:
    """The text before an ``Error:`` line, which is reported; what follows is usage text."""
    if "Error:" not in text:
        return text
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("Error:"):
            issues.add(number, "the command reported an error", line)
            return "\n".join(lines[: number - 1])
    return text


# --------------------------------------------------------------------------- values


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _ns(seconds: float | None) -> int | None:
    """Seconds as whole nanoseconds; None for a value too large to be a CPU time."""
    if seconds is None:
        return None
    nanoseconds = seconds * 1e9
    return round(nanoseconds) if math.isfinite(nanoseconds) else None


_HEX = frozenset("0123456789abcdefABCDEF")


def _uuid(value: str) -> str | None:
    """The canonical (lower case, dashed) form of a UUID written with or without dashes.

    xend prints dashes, libvirt's test data and Oracle VM's vm.cfg often do not: one form
    lets callers match a running domain with its configuration.
    """
    digits = value.strip().replace("-", "")
    if len(digits) != 32 or not _HEX.issuperset(digits):
        return None
    digits = digits.lower()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def _mac(value: str | None) -> str | None:
    """Lower-case colon form; old xl's SXP prints the 12 digits without colons."""
    if value is None:
        return None
    text = value.strip()
    if _MAC.fullmatch(text):
        return text.lower()
    if len(text) == 12 and _HEX.issuperset(text):
        text = text.lower()
        return ":".join(text[i : i + 2] for i in range(0, 12, 2))
    return text or None


# --------------------------------------------------------------------------- state flags

_XM_FLAGS = ("r-", "b-", "p-", "s-", "-rscwS?", "d-")  # xm/xl: rbps + shutdown reason + d
_XENTOP_FLAGS = ("d-", "s-", "b-", "c-", "p-", "r-")  # xentop: dsbcpr


def _fits(flags: str, layout: tuple[str, ...]) -> bool:
    return all(char in allowed for char, allowed in zip(flags, layout, strict=False))


@functools.lru_cache(maxsize=128)  # a host shows a handful of distinct flag strings
def state_from_flags(flags: str) -> VmState:
    """The state of a domain from the flags ``xm list``/``xl list`` (or xentop) print.

    Blank flags are an inactive domain xend manages (it has no domain id): SHUTOFF. When
    several flags are set the most final wins: dying > crashed > shutting down > paused >
    running > blocked.
    """
    text = flags.strip()
    if not text:
        return VmState.SHUTOFF
    if len(text) in (5, 6) and _fits(text, _XM_FLAGS):
        blocked, paused = text[1] == "b", text[2] == "p"  # "r" (0) is the default below
        shutdown, crashed = text[3] == "s", text[4] == "c"
        dying = len(text) == 6 and text[5] == "d"
    elif len(text) == 6 and _fits(text, _XENTOP_FLAGS):
        dying, shutdown, blocked = text[0] == "d", text[1] == "s", text[2] == "b"
        crashed, paused = text[3] == "c", text[4] == "p"  # "r" (5) is the default below
    else:
        return VmState.UNKNOWN
    if dying:
        return VmState.DYING
    if crashed:  # xl shows a crash as a shutdown whose reason is "c"
        return VmState.CRASHED
    if shutdown:
        return VmState.SHUTTING_DOWN
    if paused:
        return VmState.PAUSED
    if blocked:
        return VmState.BLOCKED
    # "r" or no flag at all: Xen sets neither r nor b for a domain whose vCPUs are runnable
    # but waiting for a physical CPU at the instant of the sample, common on a busy host.
    return VmState.RUNNING


def _domain_state(flags: str | None, domid: int | None) -> VmState:
    if domid is None and (flags is None or not flags.strip("- \t")):
        return VmState.SHUTOFF  # no domain id: nothing runs, whatever placeholder flags say
    if flags is None:
        return VmState.UNKNOWN  # a live domain whose output does not tell (xl list -l)
    return state_from_flags(flags)


# --------------------------------------------------------------------------- S-expressions

SxpValue: TypeAlias = "str | list[SxpValue]"

_QUOTED = re.compile(r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*'?|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?""")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _split_quoted(text: str) -> list[str]:
    """``[plain, quoted, plain, quoted, ..., plain]``; a quote inside an atom is no quote.

    Quoted strings never span lines (xend escapes newlines), so a stray quote costs one
    line at most.
    """
    if "'" not in text and '"' not in text:
        return [text]
    parts: list[str] = []
    size = len(text)
    start = pos = 0
    next_single = next_double = -1
    while True:
        # str.find is memchr-fast; remember the next of each kind instead of rescanning.
        if next_single < pos:
            next_single = text.find("'", pos)
            if next_single < 0:
                next_single = size
        if next_double < pos:
            next_double = text.find('"', pos)
            if next_double < 0:
                next_double = size
        quote = min(next_single, next_double)
        if quote >= size:
            break
        before = text[quote - 1] if quote else " "
        if not before.isspace() and before not in "()":
            pos = quote + 1
            continue
        match = _QUOTED.match(text, quote)
        assert match is not None  # the pattern matches any quote character
        parts.append(text[start:quote])
        parts.append(match.group())
        start = pos = match.end()
    parts.append(text[start:])
    return parts


def _quoted_closed(token: str) -> bool:
    if len(token) < 2 or token[-1] != token[0]:
        return False
    backslashes = len(token) - 1 - len(token[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append(_ESCAPES.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)


class _SxpText:
    """The text an S-expression tree came from: finds the line of a list when needed.

    Lists carry no line numbers (building them would cost more than the parse); the n-th
    list in document order is the n-th "(" outside quotes, located on demand.
    """

    __slots__ = ("_open_lines", "_ordinals", "parts", "top")

    def __init__(self, parts: list[str], top: list[SxpValue]) -> None:
        self.parts = parts
        self.top = top  # keeps every list alive, so their ids stay theirs
        self._open_lines: list[int] | None = None
        self._ordinals: dict[int, int] | None = None

    def _opens(self) -> list[int]:
        if self._open_lines is None:
            lines: list[int] = []
            line = 1
            for index, part in enumerate(self.parts):
                if index % 2 == 0:
                    pos = part.find("(")
                    while pos >= 0:
                        lines.append(line + part.count("\n", 0, pos))
                        pos = part.find("(", pos + 1)
                    line += part.count("\n")
            self._open_lines = lines
        return self._open_lines

    def line_of(self, node: list[SxpValue]) -> int:
        if self._ordinals is None:
            # Document order is depth-first order; one walk serves every later question.
            ordinals: dict[int, int] = {}
            todo = [item for item in reversed(self.top) if isinstance(item, list)]
            while todo:
                current = todo.pop()
                ordinals[id(current)] = len(ordinals)
                todo.extend(item for item in reversed(current) if isinstance(item, list))
            self._ordinals = ordinals
        ordinal = self._ordinals.get(id(node))
        opens = self._opens()
        return opens[ordinal] if ordinal is not None and ordinal < len(opens) else 0

    def line_of_part(self, index: int) -> int:
        return 1 + sum(part.count("\n") for part in self.parts[:index])

    def line_of_close(self, ordinal: int) -> int:
        """The line of the ``ordinal``-th ")" outside quotes (0-based)."""
        line = 1
        for index, part in enumerate(self.parts):
            if index % 2 == 0:
                pos = part.find(")")
                while pos >= 0:
                    if ordinal == 0:
                        return line + part.count("\n", 0, pos)
                    ordinal -= 1
                    pos = part.find(")", pos + 1)
                line += part.count("\n")
        return 0


def _count_lists(values: list[SxpValue]) -> int:
    todo = [values]
    count = -1  # not the container itself
    while todo:
        current = todo.pop()
        count += 1
        todo.extend(item for item in current if isinstance(item, list))
    return count


def _read_sxp(text: str, issues: _Issues) -> _SxpText:
    top: list[SxpValue] = []
    parents: list[list[SxpValue]] = []
    current = top
    strays = 0
    parts = _split_quoted(text)
    push, pop = parents.append, parents.pop
    for index, part in enumerate(parts):
        if index % 2:
            if len(part) > 1 and part[-1] == part[0] and "\\" not in part:
                current.append(part[1:-1])
            elif _quoted_closed(part):
                current.append(_unquote(part))
            else:
                issues.add(_SxpText(parts, top).line_of_part(index), "unterminated quoted string")
            continue
        # The hot loop: splitting is done in C, one cheap branch per word.
        for word in part.replace("(", " ( ").replace(")", " ) ").split():
            if word == "(":
                push(current)
                node: list[SxpValue] = []
                current.append(node)
                current = node
            elif word == ")":
                if parents:
                    current = pop()
                else:
                    # Every ")" so far closed one of the lists so far, or was a stray.
                    ordinal = _count_lists(top) + strays
                    line = _SxpText(parts, top).line_of_close(ordinal)
                    issues.add(line, "unbalanced parenthesis: ')' without '('")
                    strays += 1
            else:
                current.append(word)
    source = _SxpText(parts, top)
    if parents:
        tail = parts[-1]
        cut = tail and not tail[-1].isspace() and tail[-1] not in "()"
        if cut and current and isinstance(current[-1], str):
            current.pop()  # the end of the text cut this atom: its value may be partial
        outermost = parents[1] if len(parents) > 1 else current
        issues.add(
            source.line_of(outermost),
            f"unbalanced parenthesis: {len(parents)} list(s) still open at the end (truncated?)",
        )
    return source


def parse_sxp(text: str, command: str = "sxp") -> tuple[list[SxpValue], tuple[ParseIssue, ...]]:
    """A tolerant S-expression reader: lists, bare atoms, single/double quoted strings.

    Lists left open at the end are closed (and reported), an atom cut by the end of the
    text is dropped, a stray ")" or an unterminated quote is reported and skipped.
    """
    issues = _Issues(command, text)
    return _read_sxp(text, issues).top, issues.freeze()


def _sxp_values(node: list[SxpValue]) -> dict[str, str]:
    """``(key value)`` children of a list as {key: value}; the first of a repeated key wins.

    ``(key)``, ``(key )`` and ``(key (null))`` have no value and are left out.
    """
    return {
        child[0]: child[1]
        for child in reversed(node)
        if type(child) is list
        and len(child) > 1
        and type(child[0]) is str
        and type(child[1]) is str
    }


def _sxp_child(node: list[SxpValue], key: str) -> list[SxpValue] | None:
    return next((c for c in node if type(c) is list and c and c[0] == key), None)


_IMAGE_KINDS = {"hvm": "hvm", "linux": "xen"}
_DISK_KINDS = frozenset({"vbd", "tap", "tap2"})
_DEVICE_KINDS = _DISK_KINDS | {"vif"}


class _Report(Protocol):
    def __call__(self, reason: str, key: str | None = None, device: int | None = None) -> None: ...


@dataclass(slots=True)
class _DomainFacts:
    """The raw facts of one ``(domain ...)``, however they were read."""

    values: dict[str, str]  # (key value) children, first of a key wins
    image_kind: str | None  # head of the first list in (image ...): hvm, linux
    devices: list[tuple[str, dict[str, str]]]  # (kind, (key value) children) of disks, NICs


def _build_domain(facts: _DomainFacts, report: _Report) -> XenDomain | None:
    values = facts.values

    def integer(key: str) -> int | None:
        text = values.get(key)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            report(f"{key} is not a number", key=key)
            return None

    def decimal(key: str) -> float | None:
        text = values.get(key)
        if text is None:
            return None
        value = _float(text)
        if value is None:
            report(f"{key} is not a number", key=key)
        return value

    def mib(mib_key: str, kib_key: str) -> int | None:
        size = integer(mib_key)
        if size is None:
            kib = integer(kib_key)  # old xl
            size = kib // 1024 if kib is not None else None
        return size if size is not None and size >= 0 else None  # xl prints -1: "default"

    name = values.get("name")
    raw_uuid = values.get("uuid")
    uuid = _uuid(raw_uuid) if raw_uuid is not None else None
    if name is None or uuid is None:
        missing = "a name" if name is None else "a uuid" if raw_uuid is None else "a valid uuid"
        report(f"domain without {missing}: left out")
        return None
    domid = integer("domid")
    domid = domid if domid is not None and domid >= 0 else None
    # xm list shows the online VCPUs; 0 while the domain does not run, when the configured
    # count tells more. Old xl has max_vcpus only.
    vcpus = integer("online_vcpus") or integer("vcpus")
    if vcpus is None:
        vcpus = integer("max_vcpus")
    cpu_time = decimal("cpu_time")
    started_at = decimal("start_time")
    disks: list[Disk] = []
    nics: list[Nic] = []
    for index, (kind, fields) in enumerate(facts.devices):
        if kind == "vif":
            model = fields.get("model") or fields.get("type")
            nics.append(Nic(mac=_mac(fields.get("mac")), network=fields.get("bridge"), model=model))
            continue
        disk = _sxp_disk(fields)
        if disk is None:
            report("disk without a device name: left out", device=index)
        else:
            disks.append(disk)
    os_type = _IMAGE_KINDS.get(facts.image_kind or "") or {"1": "hvm", "0": "xen"}.get(
        values.get("hvm", "")  # old xl: (hvm 0|1)
    )
    vm = Vm(
        uuid=uuid,
        name=name,
        state=_domain_state(values.get("state"), domid),
        vcpus=vcpus,
        memory_mib=mib("memory", "target_memkb"),
        max_memory_mib=mib("maxmem", "max_memkb"),
        cpu_time_ns=_ns(cpu_time),
        started_at=started_at,
        domain_id=domid,
        disks=tuple(disks),
        nics=tuple(nics),
        os_type=os_type,
    )
    return XenDomain(vm=vm, is_dom0=domid == 0 or name == "Domain-0")


def _sxp_disk(fields: dict[str, str]) -> Disk | None:
    dev = fields.get("dev") or fields.get("virtpath")  # xend | old xl
    if not dev:
        return None
    target, device = _disk_target(dev)
    uname = fields.get("uname") or fields.get("physpath")
    mode = fields.get("mode")
    if mode is not None:
        read_only, shareable = _disk_mode(mode)
    else:  # old xl: (readwrite 0|1)
        read_only, shareable = fields.get("readwrite") == "0", False
    if fields.get("is_cdrom") == "1":
        device = "cdrom"
    return Disk(
        target=target,
        source=_disk_source(uname) if uname else None,
        device=device,
        read_only=read_only,
        shareable=shareable,
    )


def _duplicates(domains: Sequence[XenDomain]) -> list[tuple[int, str]]:
    """(index, reason) of each domain whose id or uuid an earlier one already had."""
    found: list[tuple[int, str]] = []
    seen_ids: set[int] = set()
    seen_uuids: set[str] = set()
    for index, domain in enumerate(domains):
        vm = domain.vm
        if vm.domain_id is not None:
            if vm.domain_id in seen_ids:
                found.append((index, f"domain id {vm.domain_id} appears twice"))
            seen_ids.add(vm.domain_id)
        if vm.uuid in seen_uuids:
            found.append((index, f"uuid {vm.uuid} appears twice (a local migration?)"))
        seen_uuids.add(vm.uuid)
    return found


class _SxpDomainReader:
    """Turns the ``(domain ...)`` lists of a tree into XenDomains, reporting with lines."""

    def __init__(self, source: _SxpText, issues: _Issues) -> None:
        self.source = source
        self.issues = issues

    def _groups(self) -> list[tuple[list[SxpValue], list[list[SxpValue]]]]:
        """Each ``(domain ...)`` with the ``(device ...)`` lists that follow it outside.

        Old xl prints a PV domain with one ")" too many after its image, closing the
        domain before its devices: they still belong to it.
        """
        groups: list[tuple[list[SxpValue], list[list[SxpValue]]]] = []
        stray_run = False
        for value in self.source.top:
            if isinstance(value, str):
                if not stray_run:
                    self.issues.add(self.issues.find_line(value), "text outside any (domain ...)")
                stray_run = True
                continue
            stray_run = False
            head = value[0] if value else None
            if head == "domain":
                groups.append((value, []))
            elif head == "device" and groups:
                if not groups[-1][1]:
                    self.issues.add(
                        self.source.line_of(value),
                        "(device ...) after the end of its (domain ...): read as its device",
                    )
                groups[-1][1].append(value)
            else:
                shown = head if isinstance(head, str) else "(...)"
                self.issues.add(
                    self.source.line_of(value), f"expected (domain ...), found ({shown} ...)"
                )
        return groups

    def domains(self) -> tuple[XenDomain, ...]:
        found: list[XenDomain] = []
        nodes: list[list[SxpValue]] = []
        for node, outside in self._groups():
            domain = self.domain(node, outside)
            if domain is not None:
                found.append(domain)
                nodes.append(node)
        for index, reason in _duplicates(found):
            self.issues.add(self.source.line_of(nodes[index]), reason)
        return tuple(found)

    def domain(
        self, node: list[SxpValue], outside: Sequence[list[SxpValue]] = ()
    ) -> XenDomain | None:
        image: list[SxpValue] | None = None
        bodies: list[list[SxpValue]] = []
        stray: str | None = None
        for child in (*node[1:], *outside):
            if isinstance(child, list):
                if len(child) > 1:
                    head = child[0]
                    if head == "device":
                        body = child[1]
                        if isinstance(body, list) and body:
                            kind = body[0]
                            if isinstance(kind, str) and kind in _DEVICE_KINDS:
                                bodies.append(body)
                    elif head == "image" and image is None:
                        image = child
            elif stray is None:
                stray = child
        if stray is not None:
            start = self.source.line_of(node) or 1
            line = self.issues.find_line(stray, start)
            self.issues.add(line, "text outside a (key value) pair in (domain ...)")
        image_kind = None
        if image is not None:
            first = next((child for child in image[1:] if type(child) is list and child), None)
            image_kind = first[0] if first is not None and isinstance(first[0], str) else None
        devices = [(str(body[0]), _sxp_values(body)) for body in bodies]

        def report(reason: str, key: str | None = None, device: int | None = None) -> None:
            if device is not None:
                where = bodies[device]
            elif key is not None:
                where = _sxp_child(node, key) or node
            else:
                where = node
            self.issues.add(self.source.line_of(where), reason)

        return _build_domain(_DomainFacts(_sxp_values(node), image_kind, devices), report)


# The scanner: most outputs are plain xend output, read far faster without building a tree.
# It reads only what the domains need, and gives up (the tree reader then reads the text and
# reports, with lines) on anything the tree reader would report or read differently.

_EMPTY = "\x00"  # stands for '' (the empty quoted string xend prints all over) in the scan


class _GiveUp(Exception):
    """The scanner met something it leaves to the tree reader."""


def _scan_tokens(text: str) -> list[str]:
    if _EMPTY in text:
        raise _GiveUp
    parts = _split_quoted(text)
    if len(parts) > 1:
        pieces: list[str] = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                pieces.append(part)
                continue
            if len(part) < 2 or part[-1] != part[0]:
                raise _GiveUp
            value = part[1:-1]
            if not value:
                pieces.append(f" {_EMPTY} ")
            elif "\\" in value or "(" in value or ")" in value or value.split() != [value]:
                raise _GiveUp  # a value a bare atom cannot stand for
            else:
                pieces.append(f" {value} ")
        text = "".join(pieces)
    return text.replace("(", " ( ").replace(")", " ) ").split()


def _skip(take: Callable[[], str], depth: int) -> None:
    """Consume the words of ``depth`` open lists, down to their closing ")"."""
    while depth:
        word = take()
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1


def _scan_fields(take: Callable[[], str]) -> dict[str, str]:
    """The (key value) children of an open list, up to its ")", as _sxp_values reads them."""
    fields: dict[str, str] = {}
    while True:
        word = take()
        if word == ")":
            return fields
        if word != "(":
            continue  # an atom among the children: no (key value)
        key = take()
        if key == ")":
            continue
        if key == "(":  # ((...) ...): no key
            _skip(take, 2)
            continue
        value = take()
        if value == ")":
            continue
        if value == "(":  # (key (...) ...): no value
            _skip(take, 2)
            continue
        if key not in fields:
            fields[key] = "" if value == _EMPTY else value
        word = take()
        if word != ")":
            _skip(take, 2 if word == "(" else 1)


def _scan_domains(text: str) -> list[_DomainFacts]:
    take = iter(_scan_tokens(text)).__next__
    found: list[_DomainFacts] = []
    try:
        while True:
            try:
                word = take()
            except StopIteration:
                return found
            if word != "(" or take() != "domain":
                raise _GiveUp
            facts = _DomainFacts({}, None, [])
            seen_image = False
            while True:
                word = take()
                if word == ")":
                    break
                if word != "(":
                    raise _GiveUp  # an atom outside (key value)
                key = take()
                if key in ("(", ")") or (key == "image" and seen_image):
                    raise _GiveUp
                word = take()
                if word == ")":
                    continue
                if word == "(":
                    if key == "device":
                        kind = take()
                        if kind in ("(", ")"):
                            raise _GiveUp
                        if kind in _DEVICE_KINDS:
                            facts.devices.append((kind, _scan_fields(take)))
                            _skip(take, 1)
                        else:
                            _skip(take, 2)
                    elif key == "image":
                        seen_image = True
                        kind = take()
                        if kind in ("(", ")"):
                            raise _GiveUp
                        facts.image_kind = kind
                        _skip(take, 2)
                    else:
                        _skip(take, 2)
                    continue
                if key == "image":
                    raise _GiveUp  # (image atom ...): rare, the tree reads it
                if key not in facts.values:
                    facts.values[key] = "" if word == _EMPTY else word
                word = take()
                if word != ")":
                    _skip(take, 2 if word == "(" else 1)
            found.append(facts)
    except StopIteration:
        raise _GiveUp from None  # cut short: the tree reader says where


def _give_up(reason: str, key: str | None = None, device: int | None = None) -> None:
    raise _GiveUp


def _scan_xen_domains(text: str) -> tuple[XenDomain, ...] | None:
    """The domains of a clean SXP output, or None for the tree reader to read and report."""
    try:
        facts = _scan_domains(text)
        domains = tuple(d for d in (_build_domain(f, _give_up) for f in facts) if d is not None)
    except _GiveUp:
        return None
    return None if _duplicates(domains) else domains


def _read_sxp_domains(text: str, issues: _Issues) -> tuple[XenDomain, ...]:
    scanned = _scan_xen_domains(text)
    if scanned is not None:
        return scanned
    return _SxpDomainReader(_read_sxp(text, issues), issues).domains()


def parse_xm_list_long(text: str, command: str = "xm list -l") -> Parsed[tuple[XenDomain, ...]]:
    """The domains of ``xm list -l`` (xend SXP)."""
    issues = _Issues(command, text)
    domains = _read_sxp_domains(_cut_at_error(text, issues), issues)
    return Parsed(domains, issues.freeze())


# --------------------------------------------------------------------------- disks and NICs

# Driver prefixes of a disk's "uname": file:, phy:, tap:aio:, tap:qcow:, tap2:tapdisk:vhd: ...
_DISK_DRIVERS = frozenset(
    {"file", "phy", "tap", "tap2", "tapdisk", "tapdisk2", "aio", "sync", "ram"}
    | {"qcow", "qcow2", "vhd", "vmdk", "raw", "qed"}
)
_DISK_FORMATS = frozenset({"raw", "qcow", "qcow2", "vhd", "qed", "empty"})
_DISK_DEVICES = frozenset({"disk", "cdrom", "floppy"})


def _disk_source(uname: str) -> str | None:
    """The path or device of a disk, without the driver prefixes (``tap:aio:/x`` -> ``/x``).

    An unknown prefix (``drbd:``, ``rbd:``, ``iscsi:``) names the storage itself: kept.
    """
    rest = uname.strip()
    stripped = False
    while True:
        head, sep, tail = rest.partition(":")
        if not sep or head.lower() not in _DISK_DRIVERS:
            break
        rest, stripped = tail, True
    if stripped and rest.startswith("//"):
        rest = "/" + rest.lstrip("/")  # file:///img is the URL spelling of file:/img
    return rest or None


def _disk_target(dev: str) -> tuple[str, str]:
    """``xvda:disk`` -> (xvda, disk); ``hdc:cdrom`` -> (hdc, cdrom); ``ioemu:hda`` -> hda."""
    parts = [part for part in dev.strip().split(":") if part]
    device = "disk"
    if len(parts) > 1 and parts[-1].lower() in _DISK_DEVICES:
        device = parts.pop().lower()
    if len(parts) > 1 and parts[0].lower() == "ioemu":
        parts.pop(0)
    return ":".join(parts), device


def _disk_mode(mode: str) -> tuple[bool, bool]:
    """(read_only, shareable) of an xm mode: r, ro, w, rw, w! (writable by several)."""
    text = mode.strip().lower()
    read_only = text.startswith("r") and not text.startswith("rw")
    return read_only, "!" in text


_XL_DISK_KEYS = frozenset(
    {"target", "format", "vdev", "access", "devtype", "backendtype", "backend", "script"}
    | {"direct-io-safe", "discard", "no-discard", "specification", "trusted", "untrusted"}
)


def _disk_from_spec(spec: str) -> Disk | None:
    """A disk of a config: xm ``file:/img,xvda:cdrom,r`` or xl ``vdev=..,target=..``."""
    items = spec.split(",")
    while items and not items[-1].strip():
        items.pop()  # a trailing comma is no empty column
    keyed: dict[str, str] = {}
    positional: list[str] = []
    for index, item in enumerate(items):
        text = item.strip()
        key, eq, value = text.partition("=")
        key = key.strip().lower()
        if eq and key in _XL_DISK_KEYS:
            if key == "target":  # xl: target= takes the rest of the spec, commas and all
                keyed[key] = ",".join([value, *items[index + 1 :]]).strip()
                break
            keyed[key] = value.strip()
        elif text.lower() == "cdrom":
            keyed["devtype"] = "cdrom"
        else:
            positional.append(text)
    target = vdev = access = None
    if len(positional) >= 4 or (
        len(positional) == 3 and positional[1].lower() in _DISK_FORMATS
    ):  # xl: target, format, vdev, access
        target, _format, vdev, *rest = positional
        access = rest[0] if rest else None
    elif len(positional) == 3:  # xm: uname, dev, mode
        target, vdev, access = positional
    elif len(positional) == 2:
        target, vdev = positional
    elif positional:
        target = positional[0]
    target = keyed.get("target", target)
    vdev = keyed.get("vdev", vdev)
    access = keyed.get("access", access)
    if not vdev:
        return None
    name, device = _disk_target(vdev)
    if keyed.get("devtype", "").lower() == "cdrom":
        device = "cdrom"
    read_only, shareable = _disk_mode(access) if access else (False, False)
    return Disk(
        target=name,
        source=_disk_source(target) if target else None,
        device=device,
        read_only=read_only,
        shareable=shareable,
    )


def _nic_from_spec(spec: str) -> tuple[Nic, list[str]]:
    """A NIC of a config (``mac=..,bridge=..,model=..``) and the settings without a key."""
    settings: dict[str, str] = {}
    keyless: list[str] = []
    for item in spec.split(","):
        text = item.strip()
        if not text:
            continue
        key, eq, value = text.partition("=")
        if eq:
            settings[key.strip().lower()] = value.strip()
        else:
            keyless.append(text)
    nic = Nic(
        mac=_mac(settings.get("mac")),
        network=settings.get("bridge") or None,
        model=settings.get("model") or settings.get("type") or None,
    )
    return nic, keyless


# --------------------------------------------------------------------------- xl list -l (JSON)


def _obj(value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    return {}


def _json_int(value: object) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _int(value.strip())
    return None


def _json_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_true(value: object) -> bool:
    """libxl prints defbools as "True"/"False" and flags as 0/1."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (isinstance(value, int) and value != 0)


_OS_TYPES = {"hvm": "hvm", "pv": "xen", "pvh": "xenpvh"}  # libvirt's names


def _brief(value: object) -> str:
    """A short, safe description of a JSON value for an issue (repr may recurse or be huge)."""
    if isinstance(value, dict):
        return "{" + ", ".join(str(key) for key in list(value)[:6]) + "}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return str(value)[:80]


def _domain_from_json(item: object, issues: _Issues) -> XenDomain | None:
    data = _obj(item)
    if "config" in data:
        domid = _json_int(data.get("domid"))
        config = _obj(data["config"])
    elif "c_info" in data:  # a bare libxl_domain_config
        domid, config = None, data
    else:
        issues.add(0, "expected a domain object with a config", _brief(item))
        return None
    c_info = _obj(config.get("c_info"))
    b_info = _obj(config.get("b_info"))
    name = _json_str(c_info.get("name"))
    raw_uuid = _json_str(c_info.get("uuid"))
    uuid = _uuid(raw_uuid) if raw_uuid else None
    if name is None or uuid is None:
        missing = "a name" if name is None else "a uuid" if raw_uuid is None else "a valid uuid"
        issues.add(0, f"domain without {missing}: left out", name or raw_uuid or "")
        return None
    domid = domid if domid is not None and domid >= 0 else None
    max_kib = _json_int(b_info.get("max_memkb"))
    target_kib = _json_int(b_info.get("target_memkb"))
    avail = b_info.get("avail_vcpus")
    vcpus = len(avail) if isinstance(avail, list) and avail else _json_int(b_info.get("max_vcpus"))
    os_type = _OS_TYPES.get(str(c_info.get("type", "")).lower())
    if os_type is None:
        os_type = next((v for k, v in _OS_TYPES.items() if f"type.{k}" in b_info), None)
    disks: list[Disk] = []
    raw_disks = config.get("disks")
    for raw in raw_disks if isinstance(raw_disks, list) else ():
        disk = _obj(raw)
        vdev = _json_str(disk.get("vdev"))
        if vdev is None:
            issues.add(0, f"a disk of {name} has no vdev: left out", _brief(raw))
            continue
        path = _json_str(disk.get("pdev_path"))
        disks.append(
            Disk(
                target=vdev,
                source=path,
                device="cdrom" if _json_true(disk.get("is_cdrom")) else "disk",
                # libxl leaves out fields at their default: no "readwrite" means 0, read-only
                read_only=not _json_true(disk.get("readwrite")),
            )
        )
    nics: list[Nic] = []
    raw_nics = config.get("nics")
    for raw in raw_nics if isinstance(raw_nics, list) else ():
        nic = _obj(raw)
        nics.append(
            Nic(
                mac=_mac(_json_str(nic.get("mac"))),
                network=_json_str(nic.get("bridge")),
                model=_json_str(nic.get("model")),
            )
        )
    vm = Vm(
        uuid=uuid,
        name=name,
        state=VmState.UNKNOWN,  # not in the config: merge_table_rows adds it
        vcpus=vcpus,
        memory_mib=target_kib // 1024 if target_kib is not None and target_kib >= 0 else None,
        max_memory_mib=max_kib // 1024 if max_kib is not None and max_kib >= 0 else None,
        domain_id=domid,
        disks=tuple(disks),
        nics=tuple(nics),
        os_type=os_type,
    )
    return XenDomain(vm=vm, is_dom0=domid == 0 or name == "Domain-0")


_JSON_TOKEN = re.compile(r'\n|"(?:[^"\\\n]|\\.)*"?|[{}\[\]:,]|[^\s{}\[\]:,"]+')
_JSON_WORDS: dict[str, object] = {"true": True, "false": False, "null": None}


def _read_json_tolerant(text: str, issues: _Issues) -> list[object]:
    """JSON values of a text that json refuses: truncated, abridged with ``...``, or with
    text around it. Keeps every complete value; reports the rest with its line."""
    top: list[object] = []
    stack: list[dict[str, object] | list[object]] = []
    keys: list[str | None] = []  # the pending key of each open object
    line = 1
    reported_lines: set[int] = set()

    def report(reason: str) -> None:
        if line not in reported_lines:  # one issue a line is enough to find it
            reported_lines.add(line)
            issues.add(line, reason)

    def put(value: object) -> None:
        if not stack:
            top.append(value)
            return
        container = stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif keys[-1] is not None:
            container[keys[-1]] = value
            keys[-1] = None
        else:
            report("value without a key")

    tokens = _JSON_TOKEN.findall(text)
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        first = token[0]
        if first == "\n":
            line += 1
        elif first in "{[":
            container: dict[str, object] | list[object] = {} if first == "{" else []
            put(container)
            stack.append(container)
            keys.append(None)
        elif first in "}]":
            wanted = dict if first == "}" else list
            if stack and isinstance(stack[-1], wanted):
                stack.pop()
                keys.pop()
            else:
                report(f"unbalanced '{first}'")
        elif first == ",":
            if keys:
                keys[-1] = None
        elif first == ":":
            if not stack or not isinstance(stack[-1], dict) or keys[-1] is None:
                report("':' without a key")
        elif first == '"':
            try:
                value = json.loads(token) if len(token) > 1 and token.endswith('"') else None
            except ValueError:
                value = None
            if not isinstance(value, str):
                report("unterminated string")
            elif stack and isinstance(stack[-1], dict) and keys[-1] is None:
                keys[-1] = value
            else:
                put(value)
        else:
            if index == last and not text[-1:].isspace():
                report("value cut by the end of the text")  # the number may be partial
                continue
            if token in _JSON_WORDS:
                put(_JSON_WORDS[token])
                continue
            try:
                number = json.loads(token)
            except ValueError:
                number = None
            if isinstance(number, int | float) and not isinstance(number, bool):
                put(number)
            else:
                report(f"unreadable text {token[:40]!r}")
    if stack:
        issues.add(line, f"{len(stack)} JSON object(s) or list(s) still open at the end")
    return top


def parse_xl_list_long(text: str, command: str = "xl list -l") -> Parsed[tuple[XenDomain, ...]]:
    """The domains of ``xl list -l``: JSON, or the legacy SXP some xl versions print.

    There is no state in it: domains are UNKNOWN until :func:`merge_table_rows` adds what
    ``xl list`` says.
    """
    issues = _Issues(command, text)
    body = _cut_at_error(text, issues)
    stripped = body.lstrip()
    if stripped.startswith("("):
        return Parsed(_read_sxp_domains(body, issues), issues.freeze())
    values: list[object]
    start = len(body) - len(stripped)
    try:
        value, end = json.JSONDecoder().raw_decode(body, start)
    except (ValueError, RecursionError):  # nesting too deep for json: the reader copes
        values = _read_json_tolerant(body, issues) if stripped else []
    else:
        values = [value]
        trailing = body[end:].strip()
        if trailing:
            line = issues.find_line(trailing.split("\n", 1)[0], body.count("\n", 0, end) + 1)
            issues.add(line, "text after the JSON: ignored")
    items: list[object] = []
    for value in values:
        items.extend(value if isinstance(value, list) else [value])
    domains: list[XenDomain] = []
    seen: set[int] = set()
    for item in items:
        domain = _domain_from_json(item, issues)
        if domain is None:
            continue
        domid = domain.vm.domain_id
        if domid is not None:
            if domid in seen:
                issues.add(0, f"domain id {domid} appears twice", domain.vm.name)
            seen.add(domid)
        domains.append(domain)
    return Parsed(tuple(domains), issues.freeze())


# --------------------------------------------------------------------------- xm list / xl list

_FLAGS_TOKEN = re.compile(r"[-rbpscdwS?]{5,6}")
_WORD = re.compile(r"\S+")
# Name ID Mem VCPUs State Time(s), all present, six flags: what xm and xl print for a
# running domain. Names with blanks, blank columns and other layouts are not matched.
_PLAIN_ROW = re.compile(
    r"(\S+)[ \t]+(\d+)[ \t]+(\d+)[ \t]+(\d+)[ \t]+([-rbpscdwS?]{6})[ \t]+(\d+\.\d+)[ \t]*"
)
# The same without the ID: a domain xend manages but that is not running.
_PLAIN_INACTIVE_ROW = re.compile(
    r"(\S+)[ \t]+(\d+)[ \t]+(\d+)[ \t]+([-rbpscdwS?]{6})[ \t]+(\d+\.\d+)[ \t]*"
)
_HEADER_COLUMNS = {
    "name": "name",
    "id": "id",
    "mem": "mem",
    "mem(mib)": "mem",
    "mem(mb)": "mem",
    "vcpus": "vcpus",
    "cpu": "cpu",  # Xen 2: the CPU the domain runs on, not a count
    "state": "state",
    "time(s)": "time",
    "console": "console",
    "uuid": "uuid",
    "reason-code": "reason",
    "security": "label",
    "claimed": "claimed",
    "cpupool": "cpupool",
    "node": "numa",
}
_HEADER_SECOND_WORDS = frozenset({"label", "affinity"})  # "Security Label", "NODE Affinity"


@dataclass(frozen=True, slots=True)
class _Layout:
    before: tuple[str, ...]  # the columns between the name and the state
    after: tuple[str, ...]  # the columns after the time


_DEFAULT_LAYOUT = _Layout(("id", "mem", "vcpus"), ())


def _layout(tokens: Sequence[str]) -> _Layout | None:
    columns = [
        _HEADER_COLUMNS.get(token.lower(), "?")
        for token in tokens
        if token.lower() not in _HEADER_SECOND_WORDS
    ]
    if columns[:1] != ["name"] or "state" not in columns:
        return None
    state = columns.index("state")
    if columns[state + 1 : state + 2] != ["time"]:
        return None
    return _Layout(tuple(columns[1:state]), tuple(columns[state + 2 :]))


def _rightmost(tokens: Sequence[str], test: re.Pattern[str] | None) -> int | None:
    """Index (> 0: the name comes first) of the last flags token, or of the last decimal."""
    for index in range(len(tokens) - 1, 0, -1):
        token = tokens[index]
        if test is not None:
            if "-" in token and test.fullmatch(token):
                return index
        elif "." in token and _float(token) is not None:
            return index
    return None


def _table_row(line: str, number: int, layout: _Layout, issues: _Issues) -> TableRow | None:
    spans = [match.span() for match in _WORD.finditer(line)]
    tokens = [line[start:end] for start, end in spans]
    before = list(layout.before)
    state_at = _rightmost(tokens, _FLAGS_TOKEN)
    flags: str | None
    if state_at is not None:
        end, flags = state_at, tokens[state_at]
        time_token = tokens[state_at + 1] if state_at + 1 < len(tokens) else None
        extras = tokens[state_at + 2 :]
    else:
        # No flags: an inactive domain managed by xend, whose ID and State are blank. The
        # time is the anchor then (always printed with a decimal point).
        time_at = _rightmost(tokens, None)
        if time_at is None:
            issues.add(number, "not a domain row")
            return None
        end, flags, time_token = time_at, None, tokens[time_at]
        extras = tokens[time_at + 1 :]
        before = [column for column in before if column != "id"]
    if "id" in before:
        id_at = end - len(before) + before.index("id")
        if id_at < 1 or _int(tokens[id_at]) is None:
            before.remove("id")  # blank ID: the token belongs to the name or is missing
    first_value = end - len(before)
    if first_value < 1:
        issues.add(number, "too few columns for a domain row")
        return None
    values = dict(zip(before, tokens[first_value:end], strict=True))
    if flags is None and any(_int(values.get(key, "0")) is None for key in ("mem", "vcpus")):
        issues.add(number, "not a domain row")
        return None
    name = line[spans[0][0] : spans[first_value - 1][1]]

    def number_of(key: str, what: str) -> int | None:
        raw = values.get(key)
        value = _int(raw) if raw is not None else None
        if raw is not None and value is None:
            issues.add(number, f"{what} is not a number")
        return value

    domid = number_of("id", "domain id")
    cpu_time = _float(time_token) if time_token is not None else None
    if time_token is not None and cpu_time is None:
        issues.add(number, "time is not a number")
    uuid = None
    if "uuid" in layout.after:
        at = layout.after.index("uuid")
        uuid = _uuid(extras[at]) if at < len(extras) else None
    return TableRow(
        name=name,
        domid=domid,
        memory_mib=number_of("mem", "memory"),
        vcpus=number_of("vcpus", "vcpus"),
        state=_domain_state(flags, domid),
        cpu_time_s=cpu_time,
        uuid=uuid,
    )


def _plain_row(line: str) -> TableRow | None:
    """The common rows, read at once (polls read this table every few seconds on hundreds
    of hosts); None leaves the line to the general reader. "-" in the flags: as the
    general reader recognises them."""
    plain = _PLAIN_ROW.fullmatch(line)
    if plain is not None:
        name, domid_text, mem, vcpus, flags, seconds = plain.groups()
        if "-" not in flags:
            return None
        domid = int(domid_text)
        state = _domain_state(flags, domid)
        return TableRow(name, domid, int(mem), int(vcpus), state, float(seconds))
    plain = _PLAIN_INACTIVE_ROW.fullmatch(line)
    if plain is None:
        return None
    name, mem, vcpus, flags, seconds = plain.groups()
    if "-" not in flags:
        return None
    return TableRow(name, None, int(mem), int(vcpus), _domain_state(flags, None), float(seconds))


def parse_list_table(text: str, command: str = "xm list") -> Parsed[tuple[TableRow, ...]]:
    """The rows of ``xm list`` / ``xl list`` (with or without a header, -v, --claims)."""
    return _read_list_table(text, command, {}, {})


class TableReader:
    """``parse_list_table`` for one host's table, poll after poll: a line printed exactly
    as in the last table is not read again, its row is the one read then.

    In the usual layout a row depends on its line alone, and the line of a VM that did
    not move (idle, paused, shut off, Domain-0) is the same from one poll to the next:
    a third or more of them on a typical host.
    """

    def __init__(self) -> None:
        self._last: dict[str, TableRow] = {}

    def read(self, text: str, command: str) -> Parsed[tuple[TableRow, ...]]:
        rows_by_line: dict[str, TableRow] = {}
        parsed = _read_list_table(text, command, self._last, rows_by_line)
        self._last = rows_by_line  # this table's lines only: it never grows
        return parsed


def _read_list_table(
    text: str,
    command: str,
    known: Mapping[str, TableRow],
    rows_by_line: dict[str, TableRow],
) -> Parsed[tuple[TableRow, ...]]:
    """The rows; a line of the usual layout found in ``known`` is not read again, and each
    such line that reads without an issue is put in ``rows_by_line``."""
    issues = _Issues(command, text)
    body = _cut_at_error(text, issues)
    layout = _DEFAULT_LAYOUT  # xl prints no header in some captures; this is its order
    plain_layout = True
    rows: list[TableRow] = []
    seen: set[int] = set()
    for number, line in enumerate(body.split("\n"), 1):
        tokens = line.split(None, 2)
        if not tokens:
            continue
        if tokens[0].lower() == "name" and len(tokens) > 1 and tokens[1].lower() == "id":
            found = _layout(line.split())
            if found is None:
                issues.add(number, "unknown header: read as Name ID Mem VCPUs State Time(s)")
            layout = found or _DEFAULT_LAYOUT
            plain_layout = layout == _DEFAULT_LAYOUT
            continue
        if not plain_layout:
            row = _table_row(line, number, layout, issues)
        elif (row := known.get(line)) is not None:
            rows_by_line[line] = row
        else:
            told = len(issues.items)
            row = _plain_row(line) or _table_row(line, number, layout, issues)
            if row is not None and len(issues.items) == told:  # its line alone says it all
                rows_by_line[line] = row
        if row is None:
            continue
        if row.domid is not None:
            if row.domid in seen:
                issues.add(number, f"domain id {row.domid} appears twice")
            seen.add(row.domid)
        rows.append(row)
    return Parsed(tuple(rows), issues.freeze())


def merge_table_rows(
    domains: Sequence[XenDomain], rows: Sequence[TableRow]
) -> tuple[XenDomain, ...]:
    """Domains of a long listing completed by the rows of the table listing.

    ``xl list -l`` has no state, CPU time or current memory; ``xl list`` has them. A row
    matches a domain with the same id *and* name (ids are reused), or by name when the
    domain has no id.
    """
    by_id = {row.domid: row for row in rows if row.domid is not None}
    by_name = {row.name: row for row in rows}
    merged: list[XenDomain] = []
    for domain in domains:
        vm = domain.vm
        if vm.domain_id is not None:
            row = by_id.get(vm.domain_id)
            row = row if row is not None and row.name == vm.name else None
        else:
            row = by_name.get(vm.name)
        if row is not None:
            vm = replace(
                vm,
                state=row.state,
                cpu_time_ns=_ns(row.cpu_time_s) if row.cpu_time_s is not None else vm.cpu_time_ns,
                memory_mib=row.memory_mib if row.memory_mib is not None else vm.memory_mib,
                vcpus=row.vcpus if row.vcpus is not None else vm.vcpus,
                domain_id=row.domid if row.domid is not None else vm.domain_id,
            )
            domain = XenDomain(vm=vm, is_dom0=domain.is_dom0 or row.is_dom0)
        merged.append(domain)
    return tuple(merged)


# --------------------------------------------------------------------------- xm info / xl info

_INFO_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_ -]*")
_INFO_TABLES = frozenset({"cpu_topology", "numa_info", "device topology"})  # xl info -n


def _info_fields(text: str, issues: _Issues) -> tuple[dict[str, str], dict[str, int]]:
    fields: dict[str, str] = {}
    lines_of: dict[str, int] = {}
    continued: str | None = None  # the key a key-less line continues
    key_indent = 0
    in_table = False
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continued = None
            continue
        indent = len(line) - len(line.lstrip())
        head, colon, value = line.partition(":")
        key = head.strip()
        # Keys are padded to a column ("host   : x"); xl info -n's table rows are not
        # ("node:    memsize ..."), which tells the two apart inside a table.
        if colon and _INFO_KEY.fullmatch(key) and (head[-1:].isspace() or not in_table):
            in_table = key in _INFO_TABLES
            if key not in fields:
                fields[key], lines_of[key] = value.strip(), number
            continued = None if in_table else key
            key_indent = indent
        elif in_table:
            continue
        elif continued is not None and indent > key_indent:
            # A value wrapped onto the next line, indented under the value column (the
            # man page does it by hand).
            fields[continued] = f"{fields[continued]} {stripped}".strip()
        else:
            issues.add(number, "line without a key")
            continued = None  # what follows continues nothing we kept
    return fields, lines_of


def parse_info_fields(text: str, command: str = "xm info") -> Parsed[dict[str, str]]:
    """Every ``key : value`` of ``xm info`` / ``xl info``, wrapped values joined."""
    issues = _Issues(command, text)
    fields, _ = _info_fields(_cut_at_error(text, issues), issues)
    return Parsed(fields, issues.freeze())


def parse_info(text: str, command: str = "xm info") -> Parsed[HostFacts]:
    """The facts of a host from ``xm info`` / ``xl info``.

    Xen prints no CPU model and no flag names (``hw_caps`` is a CPUID bitmap): those stay
    empty. Sockets are given only by old xm's ``sockets_per_node``; they are not derived
    from nr_cpus / (cores * threads), which Xen on ARM reports as 1 * 1 whatever the chip.
    """
    issues = _Issues(command, text)
    fields, lines_of = _info_fields(_cut_at_error(text, issues), issues)

    def number(key: str) -> int | None:
        raw = fields.get(key)
        if not raw:
            return None
        value = _int(raw)
        if value is None:
            decimal = _float(raw)  # cpu_mhz: "1689.603"
            if decimal is None:
                issues.add(lines_of[key], f"{key} is not a number")
                return None
            value = round(decimal)
        return value

    nodes, sockets_per_node = number("nr_nodes"), number("sockets_per_node")
    version = fields.get("xen_version") or None
    major, minor = fields.get("xen_major"), fields.get("xen_minor")
    if version is None and major and minor:
        version = f"{major}.{minor}{fields.get('xen_extra', '')}"
    is_xen = any(key.startswith("xen_") for key in fields)
    facts = HostFacts(
        hostname=fields.get("host") or None,
        cpus=number("nr_cpus"),
        sockets=nodes * sockets_per_node if nodes and sockets_per_node else None,
        cores_per_socket=number("cores_per_socket"),
        threads_per_core=number("threads_per_core"),
        mhz=number("cpu_mhz"),
        memory_mib=number("total_memory"),
        free_memory_mib=number("free_memory"),
        hypervisor="Xen" if is_xen else None,
        hypervisor_version=version,
    )
    return Parsed(facts, issues.freeze())


# --------------------------------------------------------------------------- vm.cfg

_ASSIGNMENT_START = re.compile(r"[A-Za-z_]\w*\s*=(?!=)")
_CFG_SPECIAL = re.compile(r"""'''|\"\"\"|\\.|\\$|['"#()\[\]{}]""")


def _scan_cfg_line(line: str, depth: int, triple: str | None) -> tuple[int, str | None, bool]:
    """Bracket depth, open triple quote and backslash continuation at the end of ``line``."""
    quote: str | None = None
    continued = False
    for match in _CFG_SPECIAL.finditer(line):
        mark = match.group()
        if triple is not None:
            if mark == triple:
                triple = None
        elif quote is not None:
            if mark == quote:
                quote = None
        elif mark in ("'''", '"""'):
            triple = mark
        elif mark in ("'", '"'):
            quote = mark
        elif mark == "#":
            break
        elif mark == "\\":
            continued = True
        elif mark in ("(", "[", "{"):
            depth += 1
        elif mark in (")", "]", "}"):
            depth = max(0, depth - 1)
    return depth, triple, continued


def _cfg_statements(lines: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line, lines) of each statement: a line, plus the lines of an open bracket, a
    continuation or an indented block. A new ``name =`` at column 0 inside a bracket that
    never closed starts a new statement, so one broken value costs one assignment."""
    chunk: list[str] = []
    start = depth = 0
    triple: str | None = None
    continued = False
    for number, line in enumerate(lines, 1):
        blank = not line.strip() or line.lstrip().startswith("#")
        inside = depth > 0 or triple is not None or continued
        ends = not inside and not blank and not line[:1].isspace()
        broken = depth > 0 and triple is None and _ASSIGNMENT_START.match(line) is not None
        if chunk and (ends or broken):
            yield start, chunk
            chunk = []
        if not chunk:
            if blank:
                continue
            start, depth, triple = number, 0, None
        chunk.append(line)
        depth, triple, continued = _scan_cfg_line(line, depth, triple)
    if chunk:
        yield start, chunk


_CFG_ERRORS = (SyntaxError, ValueError, TypeError, MemoryError, RecursionError)
# Old configs hold what Python warns about ("\d", "1if"): warnings about the file read, not
# about ovmtui, that would land on the terminal. Compiled under a name of their own they are
# silenced by one filter for that name: no warnings.catch_warnings, whose save and restore
# of the process-wide filters is not thread-safe. The filter is set again before each parse
# (filterwarnings moves an existing one to the front, it does not add a copy) because test
# runners and applications reset the filters.
_CFG_FILENAME = "<vm.cfg>"
_CFG_WARNINGS = re.escape(_CFG_FILENAME)


def _read_cfg_statement(
    start: int, chunk: list[str], values: dict[str, object], issues: _Issues
) -> None:
    while chunk:
        try:
            tree = ast.parse(textwrap.dedent("\n".join(chunk)), filename=_CFG_FILENAME)
        except _CFG_ERRORS as exc:
            offset = (exc.lineno or 1) - 1 if isinstance(exc, SyntaxError) else 0
            offset = min(max(offset, 0), len(chunk) - 1)
            reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
            issues.add(start + offset, f"not valid ({reason}): ignored")
            chunk = chunk[:offset]  # the statements before the broken line may be good
            continue
        break
    else:
        return
    for node in tree.body:
        line = start + node.lineno - 1
        targets = node.targets if isinstance(node, ast.Assign) else []
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        if not names or len(names) != len(targets):
            issues.add(line, "not a 'name = value' assignment: ignored")
            continue
        assert isinstance(node, ast.Assign)
        try:
            value = ast.literal_eval(node.value)
        except _CFG_ERRORS:
            issues.add(line, "value is not a literal (xm would run it as Python): ignored")
            continue
        for name in names:
            values[name] = value


def parse_vm_cfg(text: str, command: str = "vm.cfg") -> Parsed[dict[str, object]]:
    """The settings of a Python-syntax domain configuration, read, never executed."""
    issues = _Issues(command, text)
    values: dict[str, object] = {}
    warnings.filterwarnings("ignore", module=_CFG_WARNINGS)
    lines = [line.rstrip("\r") for line in text.split("\n")]
    for start, chunk in _cfg_statements(lines):
        _read_cfg_statement(start, chunk, values, issues)
    return Parsed(values, issues.freeze())


def vm_config(cfg: Mapping[str, object], command: str = "vm.cfg") -> Parsed[VmConfig]:
    """What a parsed vm.cfg says about its VM: name, uuid, sizes, disks and NICs."""
    issues = _Issues(command, "")

    def text(key: str) -> str | None:
        value = cfg.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            issues.add(0, f"{key} is not a string", repr(value))
            return None
        return value.strip() or None

    def number(key: str) -> int | None:
        value = cfg.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _int(value.strip()) is not None:
            return _int(value.strip())  # Oracle VM writes memory = '61440'
        issues.add(0, f"{key} is not a number", repr(value))
        return None

    def entries(key: str) -> list[str]:
        value = cfg.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        found: list[str] = []
        for item in items:
            if isinstance(item, str):
                found.append(item)
            else:
                issues.add(0, f"a {key} entry is not a string", repr(item))
        return found

    raw_uuid = text("uuid")
    uuid = _uuid(raw_uuid) if raw_uuid else None
    if raw_uuid and uuid is None:
        issues.add(0, "uuid is not a UUID", raw_uuid)
    kind, builder = text("type"), text("builder")  # xl: type = "pvh"; xm: builder = 'hvm'
    if kind is not None:
        os_type = _OS_TYPES.get(kind.lower())
    else:
        os_type = {"hvm": "hvm", "linux": "xen"}.get((builder or "").lower())
    disks: list[Disk] = []
    for spec in entries("disk"):
        disk = _disk_from_spec(spec)
        if disk is None:
            issues.add(0, "disk entry without a device name: left out", spec)
        else:
            disks.append(disk)
    nics: list[Nic] = []
    for spec in entries("vif"):
        nic, keyless = _nic_from_spec(spec)
        for setting in keyless:
            issues.add(0, f"vif setting without a key: {setting!r} ignored", spec)
        nics.append(nic)
    facts = VmConfig(
        name=text("name"),
        uuid=uuid,
        vcpus=number("vcpus"),
        memory_mib=number("memory"),
        max_memory_mib=number("maxmem"),
        os_type=os_type,
        disks=tuple(disks),
        nics=tuple(nics),
        simple_name=text("OVM_simple_name"),
    )
    return Parsed(facts, issues.freeze())
