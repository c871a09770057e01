"""The key encoder against xterm's sequences, by the names Textual gives keys."""

from __future__ import annotations

import pytest

from ovmtui.widgets._terminal_keys import encode_key, encode_paste

# (Textual's key, its character, bytes in normal cursor mode, bytes in application mode)
KEYS: list[tuple[str, str | None, bytes | None, bytes | None]] = [
    ("a", "a", b"a", b"a"),
    ("A", "A", b"A", b"A"),
    ("é", "é", "é".encode(), "é".encode()),
    ("grinning_face", "😀", "😀".encode(), "😀".encode()),
    ("exclamation_mark", "!", b"!", b"!"),
    ("space", " ", b" ", b" "),
    ("enter", "\r", b"\r", b"\r"),
    ("backspace", "\x7f", b"\x7f", b"\x7f"),
    ("tab", "\t", b"\t", b"\t"),
    ("shift+tab", None, b"\x1b[Z", b"\x1b[Z"),
    ("escape", "\x1b", b"\x1b", b"\x1b"),
    ("up", None, b"\x1b[A", b"\x1bOA"),
    ("down", None, b"\x1b[B", b"\x1bOB"),
    ("right", None, b"\x1b[C", b"\x1bOC"),
    ("left", None, b"\x1b[D", b"\x1bOD"),
    ("home", None, b"\x1b[H", b"\x1bOH"),
    ("end", None, b"\x1b[F", b"\x1bOF"),
    ("pageup", None, b"\x1b[5~", b"\x1b[5~"),
    ("pagedown", None, b"\x1b[6~", b"\x1b[6~"),
    ("insert", None, b"\x1b[2~", b"\x1b[2~"),
    ("delete", None, b"\x1b[3~", b"\x1b[3~"),
    ("f1", None, b"\x1bOP", b"\x1bOP"),
    ("f2", None, b"\x1bOQ", b"\x1bOQ"),
    ("f3", None, b"\x1bOR", b"\x1bOR"),
    ("f4", None, b"\x1bOS", b"\x1bOS"),
    ("f5", None, b"\x1b[15~", b"\x1b[15~"),
    ("f6", None, b"\x1b[17~", b"\x1b[17~"),
    ("f7", None, b"\x1b[18~", b"\x1b[18~"),
    ("f8", None, b"\x1b[19~", b"\x1b[19~"),
    ("f9", None, b"\x1b[20~", b"\x1b[20~"),
    ("f10", None, b"\x1b[21~", b"\x1b[21~"),
    ("f11", None, b"\x1b[23~", b"\x1b[23~"),
    ("f12", None, b"\x1b[24~", b"\x1b[24~"),
    # Modified keys: xterm's parameter 1 + shift 1 + alt 2 + ctrl 4, whatever the mode.
    ("ctrl+up", None, b"\x1b[1;5A", b"\x1b[1;5A"),
    ("shift+up", None, b"\x1b[1;2A", b"\x1b[1;2A"),
    ("alt+left", None, b"\x1b[1;3D", b"\x1b[1;3D"),
    ("ctrl+shift+right", None, b"\x1b[1;6C", b"\x1b[1;6C"),
    ("ctrl+home", None, b"\x1b[1;5H", b"\x1b[1;5H"),
    ("shift+end", None, b"\x1b[1;2F", b"\x1b[1;2F"),
    ("shift+f1", None, b"\x1b[1;2P", b"\x1b[1;2P"),
    ("ctrl+f4", None, b"\x1b[1;5S", b"\x1b[1;5S"),
    ("ctrl+f12", None, b"\x1b[24;5~", b"\x1b[24;5~"),
    ("ctrl+delete", None, b"\x1b[3;5~", b"\x1b[3;5~"),
    ("shift+pageup", None, b"\x1b[5;2~", b"\x1b[5;2~"),
    ("alt+insert", None, b"\x1b[2;3~", b"\x1b[2;3~"),
    # Ctrl with letters and the symbols of the C0 set.
    ("ctrl+a", "\x01", b"\x01", b"\x01"),
    ("ctrl+a", None, b"\x01", b"\x01"),
    ("ctrl+c", "\x03", b"\x03", b"\x03"),
    ("ctrl+z", "\x1a", b"\x1a", b"\x1a"),
    ("ctrl+shift+a", None, b"\x01", b"\x01"),
    ("ctrl+@", "\x00", b"\x00", b"\x00"),
    ("ctrl+space", None, b"\x00", b"\x00"),
    ("ctrl+left_square_bracket", None, b"\x1b", b"\x1b"),
    ("ctrl+backslash", "\x1c", b"\x1c", b"\x1c"),
    ("ctrl+right_square_bracket", "\x1d", b"\x1d", b"\x1d"),
    ("ctrl+circumflex_accent", "\x1e", b"\x1e", b"\x1e"),
    ("ctrl+underscore", "\x1f", b"\x1f", b"\x1f"),
    # Alt (and meta) put ESC before the key.
    ("alt+x", "x", b"\x1bx", b"\x1bx"),
    ("alt+shift+x", "X", b"\x1bX", b"\x1bX"),
    ("alt+ctrl+a", None, b"\x1b\x01", b"\x1b\x01"),
    ("alt+enter", None, b"\x1b\r", b"\x1b\r"),
    ("alt+backspace", None, b"\x1b\x7f", b"\x1b\x7f"),
    ("meta+x", "x", b"\x1bx", b"\x1bx"),
    # Keys a terminal does not send.
    ("f25", None, None, None),
    ("ctrl+f99", None, None, None),
    ("ctrl+grinning_face", None, None, None),
]


@pytest.mark.parametrize(("key", "character", "normal", "application"), KEYS)
def test_key(key: str, character: str | None, normal: bytes, application: bytes) -> None:
    assert encode_key(key, character, app_cursor=False) == normal
    assert encode_key(key, character, app_cursor=True) == application


@pytest.mark.parametrize(
    ("text", "bracketed", "sent"),
    [
        ("ls -l", False, b"ls -l"),
        ("ls -l", True, b"\x1b[200~ls -l\x1b[201~"),
        ("one\ntwo\r\nthree", False, b"one\rtwo\rthree"),
        ("one\ntwo", True, b"\x1b[200~one\rtwo\x1b[201~"),
        # A paste cannot end the brackets early and run the rest as keys.
        ("a\x1b[201~rm -rf /\n", True, b"\x1b[200~a[201~rm -rf /\r\x1b[201~"),
        ("é中", False, "é中".encode()),
        ("", True, b"\x1b[200~\x1b[201~"),
    ],
)
def test_paste(text: str, bracketed: bool, sent: bytes) -> None:
    assert encode_paste(text, bracketed=bracketed) == sent
