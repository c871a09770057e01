"""The kinds of job ovmtui records and how each one's result is listed (``ovmtui jobs``).

Jobs are run through ``ovmtui.operations.run_as_job``, by whoever runs them (the TUI or a
headless command), so an export made from a script is listed exactly as one made from the
dashboard. A job whose process died reads "interrupted" (see ``Repository.jobs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ovmtui.services.definitions import ExportResult

EXPORT_KIND = "export-definitions"


def export_outcome(result: ExportResult) -> tuple[bool, str]:
    """An export's job: done when every definition was saved; where, and how many missing."""
    missing = len(result.failures) + len(result.unreachable)
    return result.complete, f"{result.exported} definitions in {result.path}; {missing} missing"
