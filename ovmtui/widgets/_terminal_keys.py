"""What an xterm sends for a key or a paste: the console widget's key encoder, pure.

Keys arrive as Textual names them (`events.Key.key`, `.character`): "ctrl+up",
"shift+tab", "ctrl+right_square_bracket", "alt+x" with character "x". Special keys take
xterm's encodings, modifiers included (`ESC[1;5A` for Ctrl+Up, `ESC[3;5~` Ctrl+Delete,
`ESC[1;2P` Shift+F1); the cursor keys and Home/End switch to `ESC O x` while the guest has
set application cursor mode (DECCKM).
"""

from __future__ import annotations

ESC = "\x1b"
CSI = "\x1b["

# Keys with a final letter: `ESC[x` (or `ESC O x` in application cursor mode, or for
# F1-F4 always), `ESC[1;<mod>x` when modified.
_LETTER_KEYS: dict[str, str] = {
    "up": "A",
    "down": "B",
    "right": "C",
    "left": "D",
    "home": "H",
    "end": "F",
}
_SS3_KEYS: dict[str, str] = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
# Keys with a number: `ESC[n~`, `ESC[n;<mod>~` when modified.
_TILDE_KEYS: dict[str, int] = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}
# Keys that are one control character whatever the cursor mode.
_PLAIN_KEYS: dict[str, str] = {
    "enter": "\r",
    "tab": "\t",
    "backspace": "\x7f",
    "escape": ESC,
    "space": " ",
}
# Ctrl with a key that is not a letter: what the terminal sends (xterm's table).
_CTRL_SYMBOLS: dict[str, str] = {
    "space": "\x00",
    "@": "\x00",
    "2": "\x00",
    "left_square_bracket": ESC,
    "3": ESC,
    "backslash": "\x1c",
    "4": "\x1c",
    "right_square_bracket": "\x1d",
    "5": "\x1d",
    "circumflex_accent": "\x1e",
    "6": "\x1e",
    "underscore": "\x1f",
    "minus": "\x1f",
    "7": "\x1f",
    "question_mark": "\x7f",
    "8": "\x7f",
    "backspace": "\x08",
    "enter": "\r",
    "tab": "\t",
    "escape": ESC,
}
_MODIFIERS = ("shift", "alt", "ctrl", "meta")
# xterm's modifier parameter: 1 + shift 1 + alt 2 + ctrl 4 + meta 8.
_MODIFIER_BITS = {"shift": 1, "alt": 2, "ctrl": 4, "meta": 8}


def _split(key: str) -> tuple[frozenset[str], str]:
    """("ctrl+shift+up") -> ({"ctrl", "shift"}, "up"); "+" itself is named "plus"."""
    parts = key.split("+")
    return frozenset(part for part in parts[:-1] if part in _MODIFIERS), parts[-1]


def _special(base: str, modifiers: frozenset[str], app_cursor: bool) -> str | None:
    """The xterm sequence of a cursor, editing or function key; None for any other key."""
    code = 1 + sum(_MODIFIER_BITS[name] for name in modifiers)
    if base in _LETTER_KEYS:
        final = _LETTER_KEYS[base]
        if code > 1:
            return f"{CSI}1;{code}{final}"
        return f"{ESC}O{final}" if app_cursor else f"{CSI}{final}"
    if base in _SS3_KEYS:
        final = _SS3_KEYS[base]
        return f"{CSI}1;{code}{final}" if code > 1 else f"{ESC}O{final}"
    if base in _TILDE_KEYS:
        number = _TILDE_KEYS[base]
        return f"{CSI}{number};{code}~" if code > 1 else f"{CSI}{number}~"
    return None


def _is_printable(character: str | None) -> bool:
    return bool(character) and all(char.isprintable() for char in character or "")


def encode_key(key: str, character: str | None, *, app_cursor: bool) -> bytes | None:
    """The bytes an xterm sends for Textual's key `key` (with `character`, if any);
    None for a key a terminal does not send (or that this encoder does not know)."""
    modifiers, base = _split(key)
    special = _special(base, modifiers, app_cursor)
    if special is not None:
        return special.encode()
    if base == "tab" and modifiers == {"shift"}:
        return f"{CSI}Z".encode()
    alt = "alt" in modifiers or "meta" in modifiers
    prefix = ESC if alt else ""
    if "ctrl" in modifiers:
        if len(base) == 1 and base.isascii() and base.isalpha():
            return (prefix + chr(ord(base.lower()) - ord("a") + 1)).encode()
        if base in _CTRL_SYMBOLS:
            return (prefix + _CTRL_SYMBOLS[base]).encode()
        # Textual hands the control character itself for a few ctrl keys it does not name.
        if character is not None and len(character) == 1 and ord(character) < 0x20:
            return (prefix + character).encode()
        return None
    if base in _PLAIN_KEYS and not (modifiers - {"alt", "meta", "shift"}):
        return (prefix + _PLAIN_KEYS[base]).encode()
    if _is_printable(character):
        assert character is not None
        return (prefix + character).encode()
    # Pilot and some terminals give a one-letter key without its character.
    if len(base) == 1 and base.isprintable():
        char = base.upper() if "shift" in modifiers else base
        return (prefix + char).encode()
    if character is not None and len(character) == 1 and ord(character) < 0x20:
        return (prefix + character).encode()
    return None


PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"


def encode_paste(text: str, *, bracketed: bool) -> bytes:
    """What a terminal sends for pasted `text`: line ends as Enter (CR), wrapped in
    `ESC[200~` … `ESC[201~` when the guest asked for bracketed paste (mode 2004). Inside
    the brackets ESC is removed, so that a paste cannot end them early and run as keys."""
    body = text.replace("\r\n", "\r").replace("\n", "\r")
    if not bracketed:
        return body.encode()
    return PASTE_START + body.replace(ESC, "").encode() + PASTE_END
