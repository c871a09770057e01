"""The one path of every audited operation: check, journal "started", run, journal "finished".

A VM action, a definition import, a reconcile, a restore, and those to come (a console
session, a migration, a storage import, an attach) all go through ``Operations``:

1. ``check``: read-only mode refuses anything that changes something (the role check of
   users and groups goes here too, once there are users);
2. ``begin``: the "started" record, written before anything else, so that a refusal is on the
   record and a crash halfway leaves "started, no result". No journal, no operation: an
   operation the journal cannot record does not run;
3. the work, whose ``OvmError`` becomes the record's result, and whose cancellation (ovmtui
   ending) is recorded as "interrupted" before it goes on;
4. ``finish``: the result; and for long work a job (``ovmtui jobs``) around it all
   (``run_as_job``: written "running" before the work, "done" or "failed" after).

An operation whose result cannot be written still happened: ``Done.unrecorded`` says so, and
the caller tells the operator rather than pretending it did not run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ovmtui.errors import ActionRefused, OvmError

T = TypeVar("T")

INTERRUPTED = (
    "interrupted: ovmtui ended while it ran; the host may still have done it, check the VM"
)


class Journal(Protocol):
    """Where every operation is written before it runs and completed after (the audit log)."""

    async def journal_started(
        self,
        *,
        user: str,
        pool: str | None,
        host: str | None,
        vm: str | None,
        uuid: str | None,
        operation: str,
        command: str,
    ) -> int: ...

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int: ...


class JobRecorder(Protocol):
    async def job_started(self, kind: str, detail: str, *, user: str) -> int: ...

    async def job_finished(self, job_id: int, *, ok: bool, detail: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Operation:
    """What is about to be done, where, and the exact command that says it."""

    operation: str  # "pause", "import-definition", "restore", …
    command: str
    pool: str | None = None
    host: str | None = None
    vm: str | None = None
    uuid: str | None = None
    changes: bool = True  # False for what only reads (refused by no read-only mode)


@dataclass(frozen=True, slots=True)
class Record:
    """An operation's "started" record, waiting for its result."""

    id: int
    journal: Journal

    async def finish(self, *, ok: bool, detail: str | None) -> str | None:
        """Write the result; returns why it could not be written, or None."""
        try:
            await self.journal.journal_finished(self.id, ok=ok, detail=detail)
        except OvmError as exc:
            return exc.message
        return None


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    value: T
    unrecorded: str | None = None  # why its result is not in the journal, or None


class Operations:
    """Runs operations on the record. ``journal`` and ``refusal`` are asked at each one: the
    repository may be opened, swapped by a restore or lost while ovmtui runs."""

    def __init__(
        self,
        *,
        user: str,
        journal: Callable[[], Journal | None],
        refusal: Callable[[], str | None] = lambda: None,
        no_journal: Callable[[], str] = lambda: "no repository is open",
    ) -> None:
        self.user = user
        self._journal = journal
        self._refusal = refusal
        self._no_journal = no_journal

    def check(self, operation: Operation) -> None:
        """Raise ``ActionRefused`` when this operation may not run at all, saying why."""
        if not operation.changes:
            return
        refusal = self._refusal()
        if refusal is not None:
            raise ActionRefused(refusal)
        # The place of the role check (User, Manager, Admin) once users exist.

    def journal(self) -> Journal:
        journal = self._journal()
        if journal is None:
            # The journal is the safety net of every operation: none runs without its record.
            raise ActionRefused(
                f"it would not be recorded in the journal ({self._no_journal()}): "
                "no operation runs unrecorded"
            )
        return journal

    async def begin(self, operation: Operation, *, journal: Journal | None = None) -> Record:
        """Write the "started" record, then check (raises ``OvmError``: nothing was run).

        A refusal is on the record too, where a journal can take it: read-only mode with a
        writable repository records each refused attempt.
        """
        journal = journal if journal is not None else self._journal()
        try:
            self.check(operation)
        except ActionRefused as refused:
            if journal is not None:
                with contextlib.suppress(OvmError):
                    record = await self._started(journal, operation)
                    await record.finish(ok=False, detail=refused.message)
            raise
        return await self._started(journal if journal is not None else self.journal(), operation)

    async def _started(self, journal: Journal, operation: Operation) -> Record:
        started = await journal.journal_started(
            user=self.user,
            pool=operation.pool,
            host=operation.host,
            vm=operation.vm,
            uuid=operation.uuid,
            operation=operation.operation,
            command=operation.command,
        )
        return Record(started, journal)

    async def run(
        self,
        operation: Operation,
        work: Callable[[], Awaitable[T]],
        *,
        outcome: Callable[[T], tuple[bool, str | None]] = lambda _value: (True, None),
        check: Callable[[], None] | None = None,
        journal: Journal | None = None,
        job: tuple[JobRecorder | None, str, str] | None = None,
    ) -> Done[T]:
        """``operation`` on the record: ``check`` runs after the "started" record (so that
        its refusal is recorded too), then ``work``; ``outcome`` turns its value into the
        result. ``job``: (recorder, kind, detail) of a job around it. Raises the work's
        ``OvmError`` after recording it."""
        record = await self.begin(operation, journal=journal)
        try:
            if check is not None:
                check()
            value = await self._as_job(job, work, outcome)
        except OvmError as exc:
            await record.finish(ok=False, detail=exc.message)
            raise
        except BaseException as exc:
            # Cancelled (ovmtui ending) or a bug: on the record before it goes on.
            reason = INTERRUPTED if not isinstance(exc, Exception) else f"internal error: {exc!r}"
            with contextlib.suppress(Exception):
                await record.finish(ok=False, detail=reason)
            raise
        ok, detail = outcome(value)
        return Done(value, await record.finish(ok=ok, detail=detail))

    async def _as_job(
        self,
        job: tuple[JobRecorder | None, str, str] | None,
        work: Callable[[], Awaitable[T]],
        outcome: Callable[[T], tuple[bool, str | None]],
    ) -> T:
        if job is None or job[0] is None:
            return await work()
        recorder, kind, detail = job

        def listed(value: T) -> tuple[bool, str]:
            ok, text = outcome(value)
            return ok, text or ("done" if ok else "failed")

        return await run_as_job(recorder, kind, detail, work, outcome=listed, user=self.user)


async def run_as_job(
    recorder: JobRecorder | None,
    kind: str,
    detail: str,
    work: Callable[[], Awaitable[T]],
    *,
    outcome: Callable[[T], tuple[bool, str]],
    user: str,
    unrecorded: Callable[[str], object] | None = None,
) -> T:
    """Run ``work`` as a job of ``recorder`` (None: not recorded); return what it returns.

    ``outcome`` says whether a result is a success and how to list it. Recording the job
    never stops the work: a repository that cannot be written is told to ``unrecorded``.
    """
    job: int | None = None
    if recorder is not None:
        try:
            job = await recorder.job_started(kind, detail, user=user)
        except OvmError as exc:
            if unrecorded is not None:
                unrecorded(f"this {kind} is not recorded as a job: {exc}")

    async def finished(ok: bool, summary: str) -> None:
        if recorder is None or job is None:
            return
        try:
            await recorder.job_finished(job, ok=ok, detail=summary)
        except OvmError as exc:
            if unrecorded is not None:
                unrecorded(f"the result of this {kind} is not recorded: {exc}")

    try:
        result = await work()
    except OvmError as exc:
        await finished(False, exc.message)
        raise
    except Exception as exc:
        # A bug: the job says so rather than staying "running" until its process is gone.
        await finished(False, f"internal error: {type(exc).__name__}: {exc}")
        raise
    ok, summary = outcome(result)
    await finished(ok, summary)
    return result
