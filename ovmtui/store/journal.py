"""The audit journal's hash chain: pure functions, no I/O.

Every record carries ``prev_hash`` (the hash of the record before it, ``""`` for the first)
and ``hash``, a SHA-256 over a canonical serialisation of all its other fields (JSON with
sorted keys, no whitespace, UTF-8). Editing a record breaks its own hash; deleting one breaks
the ``prev_hash`` of the record after it; ids are consecutive, so a deleted tail shows as a
gap against the highest id ever handed out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["started", "finished"]
Result = Literal["ok", "failed", "unfinished"]

# The columns of a journal row, in table order; ``hash`` last.
FIELDS: tuple[str, ...] = (
    "id",
    "at",
    "user",
    "kind",
    "ref",
    "pool",
    "host",
    "vm",
    "uuid",
    "operation",
    "command",
    "ok",
    "detail",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One row of the journal, as stored."""

    id: int
    at: float
    user: str
    kind: Kind
    ref: int | None
    pool: str | None
    host: str | None
    vm: str | None
    uuid: str | None
    operation: str
    command: str | None
    ok: bool | None
    detail: str | None
    prev_hash: str
    hash: str = ""

    def canonical(self) -> bytes:
        """The bytes the hash is taken over: every field but ``hash``."""
        fields = asdict(self)
        del fields["hash"]
        return json.dumps(
            fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def sealed(self) -> JournalRecord:
        """This record with its ``hash`` filled in."""
        return _replace_hash(self, self.compute_hash())

    @classmethod
    def from_row(cls, row: Iterable[object]) -> JournalRecord:
        """A record from a row of ``SELECT <FIELDS> FROM journal`` (``ok`` is 0/1/NULL)."""
        values = dict(zip(FIELDS, row, strict=True))
        ok = values["ok"]
        values["ok"] = None if ok is None else bool(ok)
        return cls(**values)  # type: ignore[arg-type]


def _replace_hash(record: JournalRecord, digest: str) -> JournalRecord:
    fields = asdict(record)
    fields["hash"] = digest
    return JournalRecord(**fields)


@dataclass(frozen=True, slots=True)
class JournalVerdict:
    """The result of checking the chain; ``first_broken`` is a record id."""

    ok: bool
    records: int
    first_broken: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One action: a 'started' record joined with the 'finished' record that completes it.

    ``ok`` is None while there is no result ("started, no result": still running, or the
    program died halfway).
    """

    id: int
    at: float
    user: str
    pool: str | None
    host: str | None
    vm: str | None
    uuid: str | None
    operation: str
    command: str | None
    finished_at: float | None
    ok: bool | None
    detail: str | None

    @property
    def result(self) -> Result:
        if self.ok is None:
            return "unfinished"
        return "ok" if self.ok else "failed"


def verify_chain(records: Iterable[JournalRecord], last_id: int | None = None) -> JournalVerdict:
    """Check ``records`` (in id order) against each other.

    ``last_id`` is the highest id the database ever handed out (``sqlite_sequence``); when it
    is beyond the last record, records at the end were deleted.
    """
    count = 0
    prev_hash = ""
    prev_id = 0
    for record in records:
        count += 1
        if record.compute_hash() != record.hash:
            return JournalVerdict(
                False, count, record.id, f"record {record.id} was altered: its hash does not match"
            )
        if record.prev_hash != prev_hash:
            reason = f"record {record.id}: prev_hash does not match the hash of " + (
                f"record {prev_id}" if prev_id else "the start of the journal"
            )
            if record.id != prev_id + 1:
                reason += f" ({_span(prev_id + 1, record.id - 1)} missing)"
            return JournalVerdict(False, count, record.id, reason)
        if record.id != prev_id + 1:
            return JournalVerdict(
                False,
                count,
                record.id,
                f"record {record.id}: {_span(prev_id + 1, record.id - 1)} missing before it",
            )
        prev_hash = record.hash
        prev_id = record.id
    if last_id is not None and last_id > prev_id:
        return JournalVerdict(
            False,
            count,
            prev_id + 1,
            f"{_span(prev_id + 1, last_id)} missing at the end of the journal",
        )
    return JournalVerdict(True, count)


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}-{last} are"
