"""What every Xen parser returns, how it collects issues, and the values they all read.

:class:`Parsed` holds what a parser read and the :class:`ParseIssue` of each part it
could not; :class:`XenDomain` is a domain of a long listing, SXP or JSON alike.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from ovmtui.model import Vm

T_co = TypeVar("T_co", covariant=True)  # frozen: a Parsed[Sub] is a Parsed[Base]

_MAX_ISSUE_TEXT = 200

# xm: "Error: Domain 'x' does not exist."; xl: "x is an invalid domain identifier (rc=-6)".
NOT_FOUND = re.compile(r"does not exist|invalid domain identifier|not found", re.IGNORECASE)


def output_text(output: str | bytes | None) -> str:
    """A command's output as text, whatever asyncssh handed over."""
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def toolstack_error(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    """The line that says what went wrong (xm prints `Error: ...` then its usage text)."""
    texts = [output_text(stderr), output_text(stdout)]
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip()]
    for prefixes in (("error", "libxl: error"), ("usage",)):  # the error before the usage
        for line in lines:
            if line.lower().startswith(prefixes):
                return line
    return lines[0] if lines else "no output"


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


_OS_TYPES = {"hvm": "hvm", "pv": "xen", "pvh": "xenpvh"}  # libvirt's names
