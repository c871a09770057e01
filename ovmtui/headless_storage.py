"""The storage and its library from a shell: ``ovmtui storage`` and ``ovmtui resource``.

The same service as the storage screen (``session.storage``), after one poll (which host
answers decides the utility host). Exit status: 0 done, 1 refused by a rule (which one is
said) or the host failed, 2 bad input (an unknown pool or resource; raised to the caller).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, ConfigError, OvmError
from ovmtui.headless import session_for
from ovmtui.services.storage import COLUMNS, StorageView, header_lines, row_cells
from ovmtui.storage_model import shown


def resolve_pool(config: EstateConfig, pool: str | None, path: str | None = None) -> str:
    """The pool asked for; else the one whose shared storage holds ``path``; else the only
    one. Raises ``ConfigError`` (exit 2) when it cannot be told."""
    names = [p.name for p in config.pools]
    if pool is not None:
        if pool not in names:
            raise ConfigError(f"no pool {pool!r} in the estate (pools: {', '.join(names)})")
        return pool
    if path is not None and path.startswith("/"):
        normal = posixpath.normpath(path)
        for candidate in config.pools:
            root = candidate.shared_storage
            if root and normal.startswith(posixpath.normpath(root).rstrip("/") + "/"):
                return candidate.name
    if len(names) == 1:
        return names[0]
    raise ConfigError(f"which pool? pass --pool (pools: {', '.join(names)})")


def storage_json(view: StorageView) -> dict[str, Any]:
    return {
        "pool": view.pool,
        "entries": [
            {
                "kind": row.kind.value,
                "name": row.name,
                "path": row.path,
                "size_bytes": row.size_bytes,
                "status": row.status.value,
                "used_by": [
                    {"vm": u.vm, "mode": u.mode.value, "state": u.state.value} for u in row.used_by
                ],
            }
            for row in view.rows
        ],
    }


async def storage_report(
    config: EstateConfig,
    repository: Path,
    pool: str | None,
    out: TextIO,
    *,
    as_json: bool,
    warn: TextIO | None = None,
) -> int:
    """``ovmtui storage``: the pool's layout with its library; 1 when it cannot be read."""
    name = resolve_pool(config, pool)
    async with session_for(config, repository, warn) as session:
        await session.poll_once()
        view = await session.storage.view(name)
    if as_json:
        json.dump(storage_json(view), out)
        out.write("\n")
    else:
        for line in header_lines(view):
            out.write(line + "\n")
        table = [["KIND", *COLUMNS], *([row.kind.value, *row_cells(row)] for row in view.rows)]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
        for cells in table:
            padded = [c.ljust(w) for c, w in zip(cells, widths, strict=False)]
            out.write(("  ".join([*padded, cells[-1]])).rstrip() + "\n")
    if view.problem is not None:
        if warn is not None:
            warn.write(f"ovmtui: {view.problem}\n")
        return 1
    return 0


async def resource_report(
    config: EstateConfig,
    repository: Path,
    verb: str,
    names: Sequence[str],
    out: TextIO,
    *,
    pool: str | None,
    confirm: Callable[[str], bool] | None = None,
    warn: TextIO | None = None,
) -> int:
    """``ovmtui resource register|approve|delete``. ``names`` empty with register: all."""
    name = resolve_pool(config, pool, names[0] if names else None)
    async with session_for(config, repository, warn) as session:
        await session.poll_once()
        view = await session.storage.view(name)
        if view.problem is not None:
            raise ActionRefused(view.problem, title="Storage not read")
        try:
            if verb == "register":
                results = await session.storage.register(view, names)
                for result in results:
                    if result.refused is None:
                        out.write(f"registered {shown(result.row.path)} (pending approval)\n")
                    else:
                        out.write(f"refused {shown(result.row.path)}: {result.refused}\n")
                if not results:
                    out.write("nothing to register\n")
                return 1 if any(r.refused for r in results) else 0
            if verb == "approve":
                approved = await session.storage.approve(view, names[0])
                out.write(f"approved {approved.path} by {approved.approved_by}\n")
                return 0
            row = view.find(names[0])
            command = session.storage.delete_command(view, row)
            if confirm is not None and not confirm(f"Delete {shown(row.path)}:\n  {command}"):
                out.write("not deleted\n")
                return 1
            await session.storage.delete(view, names[0])
            out.write(f"deleted {shown(row.path)}\n")
            return 0
        except ActionRefused as refused:
            out.write(f"refused: {refused.message}\n")
            return 1
        except OvmError as exc:
            if exc.title == "No such resource":
                raise
            out.write(f"failed: {exc.message}\n")
            return 1
