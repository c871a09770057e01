"""``xl list -l``: JSON, or the legacy SXP some xl versions print.

A list of ``{"domid": N, "config": <libxl_domain_config>}``. libxl leaves out fields at
their default value (``"is_cdrom"`` and ``"readwrite"`` are absent when 0), memory is in
KiB and there is no state: callers merge it from ``xl list`` (see
:func:`~.xm_table.merge_table_rows`). Documents abridge it with ``...``; a tolerant reader
keeps what it can when the strict one refuses.
"""

from __future__ import annotations

import json
import re

from ovmtui.backend.xen_parse.common import (
    _OS_TYPES,
    Parsed,
    XenDomain,
    _cut_at_error,
    _int,
    _Issues,
    _mac,
    _uuid,
)
from ovmtui.backend.xen_parse.xm_list_long import _read_sxp_domains
from ovmtui.model import Disk, Nic, Vm, VmState


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
        disk_format = _json_str(disk.get("format"))
        disks.append(
            Disk(
                target=vdev,
                source=path,
                device="cdrom" if _json_true(disk.get("is_cdrom")) else "disk",
                # libxl leaves out fields at their default: no "readwrite" means 0, read-only
                read_only=not _json_true(disk.get("readwrite")),
                # libxl says "unknown" until it has probed the image: not a format.
                format=disk_format if disk_format not in (None, "unknown") else None,
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
