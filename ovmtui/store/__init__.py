"""The repository: last-known state and the audit journal, in one SQLite file."""

from __future__ import annotations

from ovmtui.store.journal import JournalEntry, JournalRecord, JournalVerdict, verify_chain
from ovmtui.store.repository import Repository
from ovmtui.store.schema import APPLICATION_ID, SCHEMA_VERSION

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "JournalEntry",
    "JournalRecord",
    "JournalVerdict",
    "Repository",
    "verify_chain",
]
