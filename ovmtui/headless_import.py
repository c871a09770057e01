"""`ovmtui resource import URL --kind iso|template|image`: an import from a shell.

Through the same core as the TUI (``EstateSession.imports``): the same checks, the same
utility host, the same journal and job. Progress goes to stderr, a line a second at most
(and one at each phase); the result to stdout. Exit 0 when the resource is in place, 1 when
the import was refused or failed (nothing left behind), 2 for a request that cannot be an
import (a bad URL, name, kind or checksum: nothing was asked of any host).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ovmtui import format as fmt
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused
from ovmtui.headless import session_for
from ovmtui.services.imports import Importing

EXIT_DONE = 0
EXIT_REFUSED = 1
PROGRESS_EVERY_S = 1.0


def progress_printer(
    err: TextIO, *, every_s: float = PROGRESS_EVERY_S, clock: Callable[[], float] = time.monotonic
) -> Callable[[Importing], None]:
    """A progress callback writing ``ovmtui: LINE`` to ``err``: at each new phase, and no
    more than once every ``every_s`` seconds while it downloads."""
    last: dict[str, object] = {"phase": None, "at": float("-inf")}

    def show(importing: Importing) -> None:
        now = clock()
        phase = importing.progress.phase
        if phase == last["phase"] and now - float(last["at"]) < every_s:  # type: ignore[arg-type]
            return
        last.update(phase=phase, at=now)
        err.write(f"ovmtui: {importing.line}\n")
        err.flush()

    return show


async def import_report(
    config: EstateConfig,
    repository: Path,
    url: str,
    kind: str,
    out: TextIO,
    err: TextIO,
    *,
    name: str | None = None,
    sha256: str | None = None,
    pool: str | None = None,
) -> int:
    """Import ``url``; see the module docstring. ``BadImport`` (exit 2) is raised before any
    host is asked."""
    async with session_for(config, repository, err) as session:
        try:
            pool, plan = session.imports.plan(url, kind, pool=pool, name=name, sha256=sha256)
            await session.poll_once()
            chosen, plan = session.imports.host_for(pool, plan)
        except ActionRefused as refused:
            err.write(f"ovmtui: {refused.title}: {refused}\n")
            return EXIT_REFUSED
        if chosen.note:
            err.write(f"ovmtui: {chosen.note}\n")
        err.write(f"ovmtui: importing {plan.url} into {plan.final} on {chosen.key.name}\n")
        outcome = await session.imports.run(pool, plan, progress=progress_printer(err))
    if not outcome.ok:
        err.write(f"ovmtui: import of {plan.name} failed: {outcome.detail}\n")
        return EXIT_REFUSED
    imported = outcome.imported
    size = fmt.size(imported.size_bytes) if imported is not None else "?"
    out.write(f"{plan.final}\t{size}\t{outcome.detail}\n")
    return EXIT_DONE
