"""``vm.cfg`` (xm/xl domain configuration): the reader.

Python syntax: ``name = 'x'``, ``disk = ['file:/img,xvda,w']``, ``u''`` literals, values
continued over lines inside brackets, comments. xm evaluated it with Python, so old
examples hold ``def``, calls and ``"VM%d" % vmid``: each assignment is read with
``ast.literal_eval`` on its own, never evaluated, and whatever is not a literal is
reported and left out. :func:`parse_vm_cfg` gives the settings, :func:`vm_config` what they
say about the VM.

Writing a vm.cfg is not done here: the writer belongs in a module of its own beside this
one (``vm_cfg_write.py``), writing disk and vif entries in the grammar :mod:`.devices`
reads, so that what it writes reads back through :func:`parse_vm_cfg` and
:func:`vm_config` unchanged.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ovmtui.backend.xen_parse.common import _OS_TYPES, Parsed, _int, _Issues, _uuid
from ovmtui.backend.xen_parse.devices import _disk_from_spec, _nic_from_spec
from ovmtui.model import Disk, Nic


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
