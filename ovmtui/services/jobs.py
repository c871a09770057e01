"""Long-running work recorded as a job in the repository: what ``ovmtui jobs`` lists.

A job is written "running" before the work starts and "done" or "failed" with its result
after, by whoever runs it (the TUI or a headless command), through ``run_as_job``: so an
export made from a script is listed exactly as one made from the dashboard. A job whose
process died reads "interrupted" (see ``Repository.jobs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ovmtui.errors import OvmError

if TYPE_CHECKING:
    from ovmtui.services.definitions import ExportResult

T = TypeVar("T")

EXPORT_KIND = "export-definitions"


class JobRecorder(Protocol):
    async def job_started(self, kind: str, detail: str, *, user: str) -> int: ...

    async def job_finished(self, job_id: int, *, ok: bool, detail: str) -> None: ...


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


def export_outcome(result: ExportResult) -> tuple[bool, str]:
    """An export's job: done when every definition was saved; where, and how many missing."""
    missing = len(result.failures) + len(result.unreachable)
    return result.complete, f"{result.exported} definitions in {result.path}; {missing} missing"
