"""The hash chain, without a database."""

from __future__ import annotations

import dataclasses

from ovmtui.store.journal import JournalRecord, verify_chain


def chain(count: int) -> list[JournalRecord]:
    records: list[JournalRecord] = []
    prev = ""
    for number in range(1, count + 1):
        record = JournalRecord(
            id=number,
            at=1_700_000_000.5 + number,
            user="oper",
            kind="started" if number % 2 else "finished",
            ref=None if number % 2 else number - 1,
            pool="pool-a",
            host="h1",
            vm="web1",
            uuid="u-1",
            operation="start",
            command="ovmtui vm start web1" if number % 2 else None,
            ok=None if number % 2 else True,
            detail=None if number % 2 else "done: ü",
            prev_hash=prev,
        ).sealed()
        records.append(record)
        prev = record.hash
    return records


def test_hash_covers_every_field_but_itself() -> None:
    record = chain(1)[0]
    assert record.hash == record.compute_hash()
    assert len(record.hash) == 64
    assert b'"hash"' not in record.canonical()
    changed = [
        dataclasses.replace(record, at=1.0),
        dataclasses.replace(record, user="mallory"),
        dataclasses.replace(record, detail="x"),
        dataclasses.replace(record, prev_hash="00"),
        dataclasses.replace(record, ok=False),
        dataclasses.replace(record, id=9),
        dataclasses.replace(record, command="rm"),
        dataclasses.replace(record, kind="finished"),
        dataclasses.replace(record, ref=1),
    ]
    for other in changed:
        assert other != record
        assert other.compute_hash() != record.hash


def test_canonical_is_sorted_json() -> None:
    text = chain(1)[0].canonical().decode()
    assert text.startswith('{"at":')
    assert '"prev_hash":""' in text


def test_a_good_chain_verifies() -> None:
    verdict = verify_chain(chain(6), last_id=6)
    assert verdict.ok and verdict.records == 6 and verdict.first_broken is None


def test_an_empty_journal_verifies() -> None:
    assert verify_chain([], None).ok


def test_an_edited_record_is_named() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], detail="edited")
    verdict = verify_chain(records, last_id=5)
    assert not verdict.ok
    assert verdict.first_broken == 3
    assert verdict.reason is not None and "altered" in verdict.reason


def test_a_rehashed_edit_breaks_the_next_link() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], detail="edited").sealed()
    verdict = verify_chain(records, last_id=5)
    assert (verdict.ok, verdict.first_broken) == (False, 4)
    assert verdict.reason is not None and "prev_hash" in verdict.reason


def test_a_deleted_record_is_named_by_the_one_after_it() -> None:
    records = chain(5)
    del records[1]
    verdict = verify_chain(records, last_id=5)
    assert (verdict.ok, verdict.first_broken) == (False, 3)
    assert verdict.reason is not None and "record 2 is missing" in verdict.reason


def test_a_deleted_tail_is_found_against_the_last_id() -> None:
    verdict = verify_chain(chain(3), last_id=5)
    assert (verdict.ok, verdict.first_broken) == (False, 4)
    assert verdict.reason is not None and "records 4-5 are missing" in verdict.reason
