"""What the terminal can show, decided before the TUI writes a single escape sequence.

A terminal that cannot address the cursor (TERM=dumb, or no TERM at all) is refused: the
dashboard would arrive there as a stream of escape codes, while `ovmtui inventory` prints
the same estate as plain lines. A locale whose character set has no box-drawing characters
(LANG=C, LC_ALL=C, a Latin-1 locale) gets the ASCII twin of every glyph and border.
"""

from __future__ import annotations

import codecs
import locale
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ovmtui.errors import OvmError

if TYPE_CHECKING:
    from textual.app import App
    from textual.binding import Binding
    from textual.content import Content
    from textual.dom import DOMNode

# On the App: ovmtui.tcss swaps every border for its ASCII twin under it, and the widgets
# draw ASCII glyphs.
ASCII_CLASS: Final = "-ascii"

# What the widgets, borders and scrollbars draw when the terminal can show Unicode: a
# character set that cannot encode all of them gets ASCII.
_UNICODE_GLYPHS: Final = "▼▶▲├└│●◌✖·…—⚠⟳▕▔▁▊▎█▀▄▆"

# One ASCII character for one glyph, so that text keeps its width and its styled spans;
# any other character outside ASCII (in a VM's name, say) becomes "?".
_ASCII_TWINS: Final = str.maketrans(
    {
        "▼": "v",
        "▶": ">",
        "▲": "^",
        "├": "|",
        "└": "`",
        "│": "|",
        "●": "*",
        "◌": "o",
        "✖": "x",
        "·": "-",
        "…": "~",
        "—": "-",
        "→": ">",
        "←": "<",
        "↑": "^",
        "↓": "v",
        "⚠": "!",
        "⟳": "@",
        "µ": "u",
    }
)


class TerminalUnsupported(OvmError):
    """The terminal cannot show the dashboard; reported before the UI starts (exit 2)."""

    title = "Terminal not supported"


def check_terminal(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a terminal without cursor addressing, saying what works instead."""
    env = os.environ if environ is None else environ
    term = env.get("TERM", "").strip()
    if term and term != "dumb":
        return
    what = f"TERM={term}" if term else "TERM is not set"
    raise TerminalUnsupported(
        f"{what}: this terminal cannot move the cursor, so the dashboard cannot be drawn. "
        "Run ovmtui in a terminal that can (xterm, screen, tmux: TERM=xterm-256color), or "
        "print the estate as plain text with `ovmtui inventory` (same --config or --demo; "
        "--json for scripts)."
    )


def startup_environ() -> Mapping[str, str]:
    """The environment as the program was started with it.

    Python itself rewrites a C locale at start-up (PEP 538 sets LC_CTYPE=C.UTF-8 in
    os.environ, PEP 540 reads the locale's encoding as UTF-8), so neither os.environ nor
    locale.getpreferredencoding() still says that the terminal was promised ASCII.
    """
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:  # not Linux: the coerced environment is the best there is
        return os.environ
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def locale_charset(environ: Mapping[str, str]) -> str:
    """The character set of the LC_CTYPE locale that `environ` selects ("ascii" for C)."""
    name = next((environ[k] for k in ("LC_ALL", "LC_CTYPE", "LANG") if environ.get(k)), "C")
    if name in ("C", "POSIX"):
        return "ascii"
    codeset = name.partition(".")[2].partition("@")[0]
    if not codeset:  # "en_US": the C library knows the locale's own default
        codeset = _libc_codeset(name)
    try:
        return codecs.lookup(codeset).name
    except LookupError:
        return "ascii"


def _libc_codeset(name: str) -> str:
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, name)
        return locale.nl_langinfo(locale.CODESET)
    except (locale.Error, AttributeError):
        return "ascii"  # a locale this machine does not have: promise nothing
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


def can_show_unicode(
    environ: Mapping[str, str] | None = None, encodings: tuple[str | None, ...] | None = None
) -> bool:
    """Whether the locale, and the streams Textual writes to, can carry ovmtui's glyphs."""
    env = startup_environ() if environ is None else environ
    if encodings is None:
        encodings = tuple(getattr(s, "encoding", None) for s in (sys.__stdout__, sys.__stderr__))
    for charset in (locale_charset(env), *encodings):
        if charset is None:
            continue
        try:
            _UNICODE_GLYPHS.encode(charset)
        except (UnicodeEncodeError, LookupError):
            return False
    return True


def use_ascii(app: App[Any]) -> None:
    """Draw `app` with ASCII only: its widgets' glyphs, borders (ovmtui.tcss), scrollbars."""
    from textual.scrollbar import ScrollBar, ScrollBarRender

    class AsciiScrollBarRender(ScrollBarRender):
        # Eighth blocks smooth the thumb's ends; whole cells (reverse video) need none.
        VERTICAL_BARS = [" "] * 8
        HORIZONTAL_BARS = [" "] * 8

    app.add_class(ASCII_CLASS)
    # Class-wide: every scrollbar of the process, as the process draws one app.
    ScrollBar.renderer = AsciiScrollBarRender
    # Key names (the footer, the key panel: "↑") and notices ("Exporting…") come from
    # everywhere in the app: translated where they all pass.
    key_display, notify = app.get_key_display, app.notify

    def ascii_key_display(binding: Binding) -> str:
        return to_ascii(key_display(binding))

    def ascii_notify(message: str, *, title: str = "", **options: Any) -> None:
        notify(to_ascii(message), title=to_ascii(title), **options)

    app.get_key_display = ascii_key_display  # type: ignore[method-assign]
    app.notify = ascii_notify  # type: ignore[method-assign]
    app.action_command_palette = lambda: _ascii_palette(app)  # type: ignore[method-assign]


def _ascii_palette(app: App[Any]) -> None:
    """Textual's command palette, with an ASCII placeholder and search icon."""
    from textual.command import CommandPalette, SearchIcon

    class AsciiPalette(CommandPalette):
        def on_mount(self) -> None:
            for icon in self.query(SearchIcon):
                icon.icon = ">"

    if app.use_command_palette and not CommandPalette.is_open(app):
        app.push_screen(AsciiPalette(placeholder="Search for commands...", id="--command-palette"))


def ascii_only(node: DOMNode) -> bool:
    """Whether `node` draws with ASCII only (False outside a running app)."""
    try:
        return node.app.has_class(ASCII_CLASS)
    except RuntimeError:  # Textual's NoActiveAppError: built outside a running app
        return False


def to_ascii(text: str) -> str:
    """`text` with each glyph replaced by its ASCII twin, one character for one."""
    if text.isascii():
        return text
    return text.translate(_ASCII_TWINS).encode("ascii", "replace").decode("ascii")


def ascii_content(content: Content) -> Content:
    """`content` in ASCII, its styles kept (one character for one: the spans still fit)."""
    from textual.content import Content

    plain = content.plain
    if plain.isascii():
        return content
    return Content(to_ascii(plain), list(content.spans), strip_control_codes=False)


def prepare_terminal(app: App[Any]) -> None:
    """Before `app` runs: refuse a dumb terminal (exit 2), give an ASCII one ASCII twins."""
    check_terminal()
    if not can_show_unicode():
        use_ascii(app)
