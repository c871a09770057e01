"""What the dashboard's Line-API views share about scrolling."""

from __future__ import annotations

from textual.scroll_view import ScrollView


def keep_in_view(view: ScrollView, index: int, rows: int) -> None:
    """Scroll `view` so that its line `index` is among the `rows` lines it shows."""
    top = view.scroll_offset.y
    # force: right after new lines the scrollbars are not laid out yet, and Textual ignores
    # a scroll it believes has nowhere to go.
    if index < top:
        view.scroll_to(y=index, animate=False, force=True)
    elif index >= top + rows:
        view.scroll_to(y=index - rows + 1, animate=False, force=True)
