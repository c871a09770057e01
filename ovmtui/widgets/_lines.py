"""What the dashboard's Line-API views (the estate tree, the VM table) share."""

from __future__ import annotations

from rich.cells import cell_len
from textual.scroll_view import ScrollView


def cells(text: str) -> int:
    """Terminal cells `text` takes; the common ASCII case without Rich's per-character walk."""
    return len(text) if text.isascii() else cell_len(text)


def keep_in_view(view: ScrollView, index: int, rows: int) -> None:
    """Scroll `view` so that its line `index` is among the `rows` lines it shows."""
    top = view.scroll_offset.y
    # force: right after new lines the scrollbars are not laid out yet, and Textual ignores
    # a scroll it believes has nowhere to go.
    if index < top:
        view.scroll_to(y=index, animate=False, force=True)
    elif index >= top + rows:
        view.scroll_to(y=index - rows + 1, animate=False, force=True)
