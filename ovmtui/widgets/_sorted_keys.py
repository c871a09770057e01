"""A sorted sequence with cheap positional access: the VM table's order of rows."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import Final

# (1 when the column value is unknown, value, casefolded name, name, uuid). The uuid makes
# every key unique, so a key finds its row by bisection and the uuid is read off its end.
SortKey = tuple[int, float | str, str, str, str]

_LOAD: Final = 512


class SortedKeys:
    """Sorted, unique keys in chunks of about `_LOAD`.

    One flat list would make every insertion move half of 50,000 pointers (~25 µs each
    here, so 500 moved rows cost more than the whole refresh budget); chunks keep an
    insertion at a bisection plus a short move, and positional access at two bisections.
    """

    __slots__ = ("_chunks", "_len", "_maxes", "_offsets")

    def __init__(self, keys: Iterable[SortKey] = ()) -> None:
        self._chunks: list[list[SortKey]] = []
        self._maxes: list[SortKey] = []
        self._offsets: list[int] | None = None
        self._len = 0
        self.reset(sorted(keys))

    def reset(self, ordered: list[SortKey]) -> None:
        """Replace the content with `ordered`, which must already be sorted."""
        self._chunks = [ordered[i : i + _LOAD] for i in range(0, len(ordered), _LOAD)]
        self._maxes = [chunk[-1] for chunk in self._chunks]
        self._len = len(ordered)
        self._offsets = None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[SortKey]:
        for chunk in self._chunks:
            yield from chunk

    def add(self, key: SortKey) -> None:
        self._offsets = None
        self._len += 1
        if not self._chunks:
            self._chunks.append([key])
            self._maxes.append(key)
            return
        at = bisect_left(self._maxes, key)
        if at == len(self._maxes):
            at -= 1
            self._chunks[at].append(key)
            self._maxes[at] = key
        else:
            insort(self._chunks[at], key)
        self._put(at, at + 1, self._chunks[at])

    def _put(self, start: int, stop: int, chunk: list[SortKey]) -> None:
        # Replaces chunks[start:stop] with `chunk`, halved when it grew too long.
        parts = [chunk[:_LOAD], chunk[_LOAD:]] if len(chunk) > 2 * _LOAD else [chunk]
        self._chunks[start:stop] = parts
        self._maxes[start:stop] = [part[-1] for part in parts]

    def remove(self, key: SortKey) -> None:
        at = bisect_left(self._maxes, key)
        chunk = self._chunks[at] if at < len(self._chunks) else []
        index = bisect_left(chunk, key)
        if index == len(chunk) or chunk[index] != key:
            raise KeyError(key)
        del chunk[index]
        self._offsets = None
        self._len -= 1
        if not chunk:
            del self._chunks[at]
            del self._maxes[at]
            return
        self._maxes[at] = chunk[-1]
        if len(chunk) < _LOAD // 8 and len(self._chunks) > 1:
            # Merge tiny chunks so repeated removals never leave thousands of them.
            left = at - 1 if at else at
            self._put(left, left + 2, self._chunks[left] + self._chunks[left + 1])

    def _ensure_offsets(self) -> list[int]:
        if self._offsets is None:
            offsets, total = [], 0
            for chunk in self._chunks:
                offsets.append(total)
                total += len(chunk)
            self._offsets = offsets
        return self._offsets

    def index(self, key: SortKey) -> int | None:
        at = bisect_left(self._maxes, key)
        if at == len(self._maxes):
            return None
        chunk = self._chunks[at]
        index = bisect_left(chunk, key)
        if index == len(chunk) or chunk[index] != key:
            return None
        return self._ensure_offsets()[at] + index

    def __getitem__(self, index: int) -> SortKey:
        if not 0 <= index < self._len:
            raise IndexError(index)
        offsets = self._ensure_offsets()
        at = bisect_right(offsets, index) - 1
        return self._chunks[at][index - offsets[at]]

    def slice(self, start: int, stop: int) -> list[SortKey]:
        start, stop = max(0, start), min(stop, self._len)
        if start >= stop:
            return []
        offsets = self._ensure_offsets()
        at = bisect_right(offsets, start) - 1
        out: list[SortKey] = []
        skip = start - offsets[at]
        while len(out) < stop - start:
            chunk = self._chunks[at]
            out.extend(chunk[skip : skip + stop - start - len(out)])
            skip = 0
            at += 1
        return out
