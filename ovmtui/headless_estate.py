"""`ovmtui pool …` and `ovmtui host …`: the estate file edited from a shell.

Through the same core as the TUI (``EstateSession.estate_edits``): the same checks, the same
journal, the repository following. A running TUI picks the change up from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ovmtui.errors import ActionRefused
from ovmtui.headless import session_for
from ovmtui.store.estate_file import EstateEdit, EstateFile, Promote


async def estate_edit_report(
    path: Path,
    repository: Path | None,
    edit: EstateEdit,
    out: TextIO,
    *,
    force: str | None = None,
    read_only: bool = False,
    warn: TextIO | None = None,
) -> int:
    """Make ``edit`` on the estate file at ``path``; say what was done. Raises ``OvmError``
    (exit 2: bad input, a file changed on disk, a refusal), the file then unchanged."""
    file = EstateFile.read(path)
    session = session_for(file.estate, repository, warn, estate_file=file, read_only=read_only)
    async with session:
        if isinstance(edit, Promote):
            # A master must answer: asked now, not taken from what was last recorded.
            key = next((h.key for h in file.estate.hosts if h.name == edit.name), None)
            if key is None:
                raise ActionRefused(f"no host {edit.name!r} in {path}", title="No such host")
            await session.poller.repoll([key])
        outcome = await session.estate_edits.apply(edit, force=force)
    out.write(f"{edit.command}: done ({outcome.detail})\n")
    out.write(f"{path}: written; the previous version is {outcome.backup}\n")
    for line in outcome.differences:
        out.write(f"repository: {line}\n")
    if outcome.unrecorded is not None and warn is not None:
        warn.write(f"ovmtui: not in the journal: {outcome.unrecorded}\n")
    return 0
