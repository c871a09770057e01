"""``xm list -l``: the domains of an SXP listing, scanned fast, read by the tree if unusual.

A poll reads this for every host every few seconds: a scanner reads clean output without
building the tree (about a third faster), and hands anything unusual to the tree reader of
:mod:`.sxp_domains`, which is the reference and the one that reports.
"""

from __future__ import annotations

from collections.abc import Callable

from ovmtui.backend.xen_parse.common import Parsed, XenDomain, _cut_at_error, _Issues
from ovmtui.backend.xen_parse.sxp import _read_sxp, _split_quoted
from ovmtui.backend.xen_parse.sxp_domains import (
    _DEVICE_KINDS,
    _build_domain,
    _DomainFacts,
    _duplicates,
    _SxpDomainReader,
)

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
