"""An import from a URL run on an SSH-reached host (a Xen utility host): the host fetches
the file itself with its own ``curl`` or ``wget``, so the bytes go from the server to the
storage without passing through ovmtui.

Steps, each a command over the host's open connection (the scripts and their parsers are in
``ssh_import_scripts``): which tools the host has; the final path free and the folder's free
space (``df``); a HEAD request (status, size, redirects) so that a 404 or a file bigger than
the free space is refused before anything is written; the download into ``<final>.partial``
as a long channel (no timeout) that reports the partial file's size twice a second and its
SHA-256 at the end; then the rename (an ISO, an image) or the checked unpacking (a template's
archive). Whatever ends it early (a failure, a cancel, ovmtui ending) removes what it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from ovmtui import format as fmt
from ovmtui.backend.base import CommandOutput, CommandRunner, LongChannelOpener
from ovmtui.backend.ssh_import_scripts import (
    CLEANUP_SCRIPT,
    DOWNLOAD_SCRIPT,
    LIST_SCRIPT,
    MARK,
    PLACE_SCRIPT,
    PREPARE_SCRIPT,
    TOOLS_SCRIPT,
    UNPACK_SCRIPT,
    ProbeFailed,
    Tool,
    archive_refusal,
    download_argv,
    failure,
    probe_argv,
    read_listing,
    read_prepared,
    read_probe,
    read_tools,
    sh,
)
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import Imported, ImportFailed, ImportPlan, strip_prefix
from ovmtui.import_progress import ImportProgress, Phase, RateMeter
from ovmtui.model import HostKey

SHORT_TIMEOUT_S: Final = 30.0
PROBE_TIMEOUT_S: Final = 60.0
CLEANUP_TIMEOUT_S: Final = 30.0
OUTPUT_TAIL: Final = 8192  # what is kept of a command's own words, for its failure


class ImportHost(CommandRunner, LongChannelOpener, Protocol):
    """What an import needs of a host: short commands and a long channel."""

    @property
    def host(self) -> HostKey: ...


async def host_tools(host: ImportHost) -> tuple[Tool | None, bool]:
    """The download tool ``host`` has (curl, else wget, else None) and whether it has
    ``sha256sum``: asked once per host by the caller."""
    result = await host.run_command(
        sh(TOOLS_SCRIPT), timeout=SHORT_TIMEOUT_S, label="command -v curl wget sha256sum"
    )
    return read_tools(_text(result.stdout))


async def import_over_ssh(
    host: ImportHost,
    plan: ImportPlan,
    *,
    tools: tuple[Tool | None, bool] | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Imported:
    """Run ``plan`` on ``host`` to its end; see the module docstring.

    Raises ``ImportFailed`` (the URL, the storage, the checksum: with why), ``ActionRefused``
    (the host lacks a tool, the name is taken), ``HostUnreachable``. Cancelling stops the
    download on the host and removes the partial file.
    """
    began = clock()
    name = host.host.name

    def report(
        phase: Phase, done: int = 0, total: int | None = None, rate: float | None = None
    ) -> None:
        if progress is not None:
            progress(ImportProgress(phase, clock() - began, done, total, rate))

    report("checking")
    tool, has_sha256sum = tools if tools is not None else await host_tools(host)
    if tool is None:
        raise ActionRefused(f"{name} has neither curl nor wget: it cannot download")
    if plan.sha256 is not None and not has_sha256sum:
        raise ActionRefused(f"{name} has no sha256sum: it cannot check the SHA-256")
    prepared = read_prepared(
        _checked(
            await host.run_command(
                sh(PREPARE_SCRIPT, plan.folder, plan.final, plan.partial),
                timeout=SHORT_TIMEOUT_S,
                label=f"df {plan.folder}",
            ),
            f"{name}: cannot prepare {plan.folder}",
        )
    )
    if prepared.exists == "final":
        raise ActionRefused(f"{plan.final} exists already: delete it or import under another name")
    if prepared.exists == "partial":
        raise ActionRefused(
            f"{plan.partial} exists: another import of {plan.name} runs, or one was cut off; "
            "remove the file if none runs"
        )
    try:
        size = await _probe(host, tool, plan)
        free = prepared.free_bytes
        if size is not None and free is not None and size > free:
            raise ImportFailed(
                f"{plan.url} is {fmt.size(size)} ({size} bytes); the storage has "
                f"{fmt.size(free)} free in {plan.folder}"
            )
        done, digest = await _download(host, tool, plan, size, report, clock)
        if size is not None and done != size:
            raise ImportFailed(f"{plan.url}: {done} bytes came of the {size} announced")
        if plan.sha256 is not None and digest != plan.sha256:
            raise ImportFailed(
                f"checksum mismatch: {plan.url} has SHA-256 {digest or 'unknown'}, "
                f"not {plan.sha256} as given"
            )
        if plan.archive:
            report("unpacking", done, size)
            await _unpack(host, plan, free)
        else:
            report("placing", done, size)
            await _place(host, plan)
    except BaseException:
        await _clean_up(host, plan, prepared.created)
        raise
    report("done", done, size)
    return Imported(plan.final, done, digest, tool)


async def _probe(host: ImportHost, tool: Tool, plan: ImportPlan) -> int | None:
    argv = probe_argv(tool, plan.url)
    result = await host.run_command(argv, timeout=PROBE_TIMEOUT_S, label=f"{tool} HEAD {plan.url}")
    try:
        return read_probe(tool, result.exit_status, _text(result.stdout + result.stderr)).size
    except ProbeFailed as exc:
        raise ImportFailed(f"{plan.url}: {exc}") from None


async def _download(
    host: ImportHost,
    tool: Tool,
    plan: ImportPlan,
    size: int | None,
    report: Callable[[Phase, int, int | None, float | None], None],
    clock: Callable[[], float],
) -> tuple[int, str | None]:
    argv = sh(
        DOWNLOAD_SCRIPT,
        plan.partial,
        "1" if plan.sha256 is not None else "0",
        *download_argv(tool, plan.url, plan.partial),
    )
    meter = RateMeter()
    done = 0
    digest: str | None = None
    words = b""  # what the tool said, for its failure
    pending = b""
    report("downloading", 0, size, None)
    async with host.long_channel(argv) as channel:
        while chunk := await channel.read():
            *lines, pending = (pending + chunk).split(b"\n")
            pending = pending[-OUTPUT_TAIL:]
            for raw in lines:
                line = raw.decode(errors="replace")
                if line.startswith(f"{MARK} bytes "):
                    with contextlib.suppress(ValueError):
                        done = int(line.split()[2])
                        report("downloading", done, size, meter.add(clock(), done))
                elif line.startswith(f"{MARK} sha256 "):
                    digest = line.split()[2] if len(line.split()) > 2 else None
                    report("verifying", done, size, None)
                else:
                    words = (words + raw + b"\n")[-OUTPUT_TAIL:]
        status = channel.exit_status
    if status != 0:
        raise ImportFailed(
            f"{plan.url}: {failure(tool, status, (words + pending).decode(errors='replace'))}"
        )
    return done, digest


async def _long(host: ImportHost, argv: Sequence[str]) -> CommandOutput:
    """``argv`` as a long channel to its end (a big archive takes minutes to list or
    unpack: no poll's timeout, nor a poll's channel)."""
    output = b""
    async with host.long_channel(argv) as channel:
        while chunk := await channel.read():
            output += chunk
        status = channel.exit_status
    return CommandOutput(status, output, b"")


async def _unpack(host: ImportHost, plan: ImportPlan, free: int | None) -> None:
    listed = await _long(host, sh(LIST_SCRIPT, plan.partial))
    if listed.exit_status != 0:
        raise ImportFailed(f"{plan.url} is not an archive tar can read: {_last(listed.stdout)}")
    try:
        members = read_listing(_text(listed.stdout))
    except ValueError as exc:
        raise ImportFailed(f"{plan.url}: {exc}") from None
    refusal = archive_refusal(members)
    if refusal is not None:
        raise ImportFailed(f"{plan.url}: {refusal}; nothing was unpacked")
    unpacked = sum(m.size for m in members)
    if free is not None and unpacked > free:
        raise ImportFailed(
            f"{plan.url} unpacks to {fmt.size(unpacked)}; the storage has {fmt.size(free)} free"
        )
    strip = strip_prefix([m.name for m in members])
    result = await _long(
        host, sh(UNPACK_SCRIPT, plan.partial, plan.unpacking, plan.final, str(strip))
    )
    if f"{MARK} exists" in _text(result.stdout):
        raise ActionRefused(f"{plan.final} appeared while the import ran: nothing replaced it")
    if result.exit_status != 0:
        raise ImportFailed(f"unpacking {plan.url} failed: {_last(result.stdout)}")


async def _place(host: ImportHost, plan: ImportPlan) -> None:
    result = await host.run_command(
        sh(PLACE_SCRIPT, plan.partial, plan.final),
        timeout=SHORT_TIMEOUT_S,
        label=f"mv {plan.final}",
    )
    if f"{MARK} exists" in _text(result.stdout):
        raise ActionRefused(f"{plan.final} appeared while the import ran: nothing replaced it")
    if result.exit_status != 0:
        raise ImportFailed(
            f"renaming into {plan.final} failed: {_last(result.stdout + result.stderr)}"
        )


async def _clean_up(host: ImportHost, plan: ImportPlan, created: str) -> None:
    """Remove what the import wrote; runs after a cancel too, and never raises (the guard
    of the download's script removes the partial file on its own when the channel ends)."""
    argv = sh(CLEANUP_SCRIPT, plan.folder, created, *plan.leftovers)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(
            host.run_command(argv, timeout=CLEANUP_TIMEOUT_S, label=f"rm {plan.partial}"),
            CLEANUP_TIMEOUT_S + 5,
        )


def _checked(result: CommandOutput, what: str) -> str:
    if result.exit_status != 0:
        raise ImportFailed(f"{what}: {_last(result.stdout + result.stderr)}")
    return _text(result.stdout)


def _text(output: bytes) -> str:
    return output.decode(errors="replace")


def _last(output: bytes) -> str:
    lines = [line.strip() for line in _text(output).splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
