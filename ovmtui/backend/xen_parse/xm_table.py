"""``xm list`` / ``xl list``: the table of domains a quick poll reads, and its fast reader.

``Name ID Mem VCPUs State Time(s)``, optionally followed by ``Console`` (Xen 2),
``UUID Reason-Code Security Label`` (``xl list -v``), ``Claimed``, ``Cpupool``. Columns
are separated by spaces *or tabs* (xl prints ``VCPUs\\tState\\tTime(s)``), the name
column is padded to 40 characters but a longer name (an FQDN) simply pushes the rest of
the row right, copies from documents collapse or indent the spacing, and a header may be
missing altogether. Rows are therefore read by token, anchored on the state flags, not by
position. An inactive domain managed by xend has a blank ID and State. Names are not
unique keys: ``(null)`` for a dying zombie and ``Domain-<N>`` when xenstore lost the name.
Xen 2's table has a ``CPU`` column (where the domain runs, not how many VCPUs it has).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from ovmtui.backend.xen_parse.common import (
    Parsed,
    XenDomain,
    _cut_at_error,
    _float,
    _int,
    _Issues,
    _ns,
    _uuid,
)
from ovmtui.backend.xen_parse.flags import _domain_state
from ovmtui.model import VmState


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
