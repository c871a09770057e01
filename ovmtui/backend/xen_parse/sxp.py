"""A tolerant reader of S-expressions, as xend (``xm list -l``) and old xl print them.

``(domain (domid 3) (name web01) (memory 1024) ... (device (vbd ...)))``, one top-level
list per domain, pretty-printed or on one line. Strings are bare atoms or single/double
quoted (``''`` is an empty value, so is ``(bootloader )``), long values are wrapped onto a
line of their own, ``(null)`` appears where C printed a NULL. Published outputs are
truncated (``......``) or miss their last ``)``; the reader keeps every list that closed
and closes the rest itself, reporting it. What the lists mean is read in
:mod:`.sxp_domains`.
"""

from __future__ import annotations

import re
from typing import TypeAlias

from ovmtui.backend.xen_parse.common import ParseIssue, _Issues

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
