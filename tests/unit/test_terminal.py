"""What the terminal can show: refused terminals, and the locale's character set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ovmtui.terminal import (
    TerminalUnsupported,
    can_show_unicode,
    check_terminal,
    locale_charset,
    to_ascii,
)


@pytest.mark.parametrize("environ", [{"TERM": "dumb"}, {}, {"TERM": ""}])
def test_a_terminal_without_cursor_addressing_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(TerminalUnsupported) as refused:
        check_terminal(environ)
    assert "ovmtui inventory" in str(refused.value)


@pytest.mark.parametrize("term", ["xterm-256color", "screen", "tmux-256color", "linux", "vt100"])
def test_real_terminals_pass(term: str) -> None:
    check_terminal({"TERM": term})


@pytest.mark.parametrize(
    ("environ", "charset"),
    [
        ({}, "ascii"),
        ({"LANG": "C"}, "ascii"),
        ({"LANG": "POSIX"}, "ascii"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "C"}, "ascii"),  # LC_ALL wins
        ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, "utf-8"),  # then LC_CTYPE
        ({"LANG": "C.UTF-8"}, "utf-8"),
        ({"LANG": "de_DE.utf8@euro"}, "utf-8"),
        ({"LC_ALL": "en_US.ISO-8859-1"}, "iso8859-1"),
        ({"LANG": "xx_YY.NO-SUCH-CHARSET"}, "ascii"),
    ],
)
def test_locale_charset(environ: dict[str, str], charset: str) -> None:
    assert locale_charset(environ) == charset


def test_unicode_needs_both_the_locale_and_the_output_stream() -> None:
    assert can_show_unicode({"LANG": "C.UTF-8"}, encodings=("utf-8", "utf-8"))
    assert not can_show_unicode({"LANG": "C"}, encodings=("utf-8", "utf-8"))
    assert not can_show_unicode({"LC_ALL": "en_US.ISO-8859-1"}, encodings=("utf-8",))
    assert not can_show_unicode({"LANG": "C.UTF-8"}, encodings=("ascii", "utf-8"))


@pytest.mark.parametrize(("lang", "shown"), [("C", "False"), ("C.UTF-8", "True")])
def test_detection_sees_the_locale_python_coerced(lang: str, shown: str) -> None:
    # Python turns LANG=C into C.UTF-8 at start-up (PEP 538/540): detection must still
    # see the C locale the terminal was started with.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": lang}
    code = "from ovmtui.terminal import can_show_unicode; print(can_show_unicode())"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == shown, proc.stderr


def test_ascii_twins_keep_the_width() -> None:
    text = "▼ prod  3/3 up · 42 VMs ├ └ │ ● ◌ ✖ … — ⚠ ⟳ ▲ ▶ café 名"
    ascii_text = to_ascii(text)
    assert ascii_text.isascii()
    assert len(ascii_text) == len(text)
    assert ascii_text.startswith("v prod  3/3 up - 42 VMs | ` | * o x ~ -")
