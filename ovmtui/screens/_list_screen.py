"""One shape for the list screens (journal, drift, backups, action log): a title line, a
table of items keyed by something stable, a footer, and ``show(items)`` that brings the
table up to date in place.

In place, because ``DataTable.clear()`` loses the cursor and the scroll: a drift list that
changed under the operator used to throw the cursor back to the top.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar, Generic, TypeVar

from textual._two_way_dict import TwoWayDict
from textual.app import ComposeResult
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import ColumnKey, RowKey

ItemT = TypeVar("ItemT")

Cells = tuple[str, ...]


class KeyedTable(DataTable[str]):
    """A DataTable whose rows can be put in a given order of keys."""

    def order_rows(self, keys: Sequence[str]) -> None:
        """Show the rows in the order of ``keys`` (every row's key, each once).

        DataTable can only append rows or sort them by their cells, and the order wanted
        here is the items' (newest first, say), which no cell need hold. This does what
        ``DataTable.sort`` does with the order it computes; Textual is pinned exactly, and
        the list screens' tests check the order after every kind of change.
        """
        if [self._row_locations.get_key(i) for i in range(len(keys))] == [RowKey(k) for k in keys]:
            return
        self._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(keys)})
        self._update_count += 1
        self.refresh()


class ListScreen(Screen[None], Generic[ItemT]):
    """A titled table of items; a subclass says its columns, how an item is keyed, how it
    becomes cells, what the title says, and its own bindings and actions."""

    DEFAULT_CSS = """
    ListScreen > .list-title {
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    """

    # The table's id (the title is "<TABLE_ID>-title") and its column headings.
    TABLE_ID: ClassVar[str]
    COLUMNS: ClassVar[tuple[str, ...]]
    # What the title says before the first ``show`` (a screen that loads its items).
    INITIAL_TITLE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, ItemT] = {}
        self._shown: dict[str, Cells] = {}
        self._column_keys: list[ColumnKey] = []

    # -- what a subclass says -------------------------------------------------------------
    # Abstract: every list screen defines these three. Not abc.abstractmethod: Textual's
    # message-pump metaclass does not combine with ABCMeta.

    def key_of(self, item: ItemT) -> str:
        raise NotImplementedError

    def cells_of(self, item: ItemT) -> Cells:
        """The row of ``item``. Items are immutable: an item shown again as the same object
        is not asked again (the action log shows thousands; one result is added at a time),
        so a screen whose cells depend on more than the item hands over new items."""
        raise NotImplementedError

    def title_of(self, items: Sequence[ItemT]) -> str:
        raise NotImplementedError

    def compose_above_table(self) -> Iterable[Widget]:
        """Widgets between the title and the table (the journal's filter box)."""
        return ()

    # -- the shape ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Plain text: a title quotes errors and names, and "[" must not be read as a style.
        yield Static(
            self.INITIAL_TITLE, id=f"{self.TABLE_ID}-title", classes="list-title", markup=False
        )
        yield from self.compose_above_table()
        table = KeyedTable(id=self.TABLE_ID, cursor_type="row", zebra_stripes=True)
        # Here rather than in on_mount: Textual runs a subclass's on_mount before this
        # class's, and a subclass shows its first items there.
        self._column_keys = table.add_columns(*self.COLUMNS)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        # Runs after the subclass's on_mount (Textual calls each class's handler, the
        # subclass's first): a subclass does not call it.
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one(f"#{self.TABLE_ID}", KeyedTable)

    @property
    def items(self) -> tuple[ItemT, ...]:
        """What is shown, in the table's order."""
        return tuple(self._items.values())

    @property
    def selected(self) -> ItemT | None:
        """The item under the cursor."""
        key = self._cursor_key()
        return None if key is None else self._items.get(key)

    def say(self, title: str) -> None:
        """Put ``title`` on the title line (a load that failed, say)."""
        self.query_one(f"#{self.TABLE_ID}-title", Static).update(title)

    def show(self, items: Sequence[ItemT]) -> None:
        """Bring the table up to ``items``, in their order, without clearing it: new keys are
        added, gone ones removed, changed cells updated one by one, and the cursor stays on
        its item, or, when that has gone, on the nearest one still there."""
        table = self.table
        wanted = {self.key_of(item): item for item in items}
        before = list(self._items)
        cursor_key = self._cursor_key()
        for key in before:
            if key not in wanted:
                table.remove_row(key)
                del self._shown[key]
        for key, item in wanted.items():
            old = self._shown.get(key)
            if old is None:
                cells = self.cells_of(item)
                table.add_row(*cells, key=key)
            elif self._items[key] is not item:
                cells = self.cells_of(item)
                for column, (was, now) in enumerate(zip(old, cells, strict=True)):
                    if was != now:
                        table.update_cell(key, self._column_keys[column], now, update_width=True)
            else:
                continue  # the very item shown: its cells are those shown
            self._shown[key] = cells
        table.order_rows(list(wanted))
        self._items = wanted
        self._put_cursor(cursor_key, before)
        self.say(self.title_of(list(wanted.values())))

    def _cursor_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row = min(max(table.cursor_row, 0), table.row_count - 1)
        return table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value

    def _put_cursor(self, key: str | None, before: list[str]) -> None:
        table = self.table
        if key is None or not self._items:
            return
        if key not in self._items:
            # Gone: the next item that was below it and is still here, else the one above.
            at = before.index(key)
            below = [k for k in before[at + 1 :] if k in self._items]
            above = [k for k in before[:at] if k in self._items]
            if not below and not above:
                return
            key = below[0] if below else above[-1]
        row = table.get_row_index(key)
        if row != table.cursor_row:
            table.move_cursor(row=row)
