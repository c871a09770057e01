"""The parts of a VM's screen: its facts, and tables brought up to date in place."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

Row = tuple[str, tuple[str, ...]]  # (key, cells)


class VmFacts(Static):
    """State, place and sizes of one VM: a label and a value a line."""

    DEFAULT_CSS = """
    VmFacts {
        padding: 0 1;
        height: auto;
    }
    """

    def show_facts(self, rows: Sequence[tuple[str, str]]) -> None:
        width = max((len(label) for label, _ in rows), default=0)
        # Content, not markup: a VM's name or a host's error may hold "[".
        lines = [
            Content.assemble((label.ljust(width), "bold"), "  ", value) for label, value in rows
        ]
        self.update(Content("\n").join(lines))


class RowsTable(DataTable[str]):
    """A table of rows keyed by something stable, updated in place: never cleared, so the
    cursor and the scroll stay where the operator left them across refreshes."""

    DEFAULT_CSS = """
    RowsTable {
        height: auto;
    }
    """

    def __init__(self, columns: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._column_keys: list[ColumnKey] = self.add_columns(*columns)
        self._shown: dict[str, tuple[str, ...]] = {}

    @property
    def shown(self) -> dict[str, tuple[str, ...]]:
        """The rows as shown, by key, in order."""
        return dict(self._shown)

    def show_rows(self, rows: Sequence[Row]) -> None:
        """Make the table show ``rows``: gone keys removed, changed cells updated, new keys
        added at the end (the rows of a VM keep their order: disks, NICs, the journal)."""
        wanted = dict(rows)
        if wanted == self._shown:
            return
        for key in [key for key in self._shown if key not in wanted]:
            self.remove_row(key)
            del self._shown[key]
        for key, cells in wanted.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for column, (was, now) in enumerate(zip(old, cells, strict=True)):
                    if was != now:
                        self.update_cell(key, self._column_keys[column], now, update_width=True)
            self._shown[key] = cells
