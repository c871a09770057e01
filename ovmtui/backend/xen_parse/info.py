"""``xm info`` / ``xl info``: the facts of a host.

``key<padding>: value`` lines. A long value may continue on the next, key-less line
(the man page wraps them), values may be empty or truncated by Xen's fixed-size
buffers, and ``xl info -n`` adds tables after ``cpu_topology``/``numa_info``.
"""

from __future__ import annotations

import re

from ovmtui.backend.xen_parse.common import Parsed, _cut_at_error, _float, _int, _Issues
from ovmtui.model import HostFacts

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
