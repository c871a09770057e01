"""The state flags of ``xm list`` / ``xl list`` (and ``xentop``), read into a :class:`VmState`.

xm/xl print six positional flags ``rbps?d``: running, blocked, paused, shutdown, the
shutdown reason (xl: ``r``eboot, ``s``uspend, ``c``rash, ``w``atchdog, ``S``oft reset;
xend: ``c`` for crashed) and dying. Xen 2 printed five (no ``d``). ``xentop`` uses the
reverse order ``dsbcpr``; both layouts are recognised, they never agree on a letter's
place except for ``------``.
"""

from __future__ import annotations

import functools

from ovmtui.model import VmState

_XM_FLAGS = ("r-", "b-", "p-", "s-", "-rscwS?", "d-")  # xm/xl: rbps + shutdown reason + d
_XENTOP_FLAGS = ("d-", "s-", "b-", "c-", "p-", "r-")  # xentop: dsbcpr


def _fits(flags: str, layout: tuple[str, ...]) -> bool:
    return all(char in allowed for char, allowed in zip(flags, layout, strict=False))


@functools.lru_cache(maxsize=128)  # a host shows a handful of distinct flag strings
def state_from_flags(flags: str) -> VmState:
    """The state of a domain from the flags ``xm list``/``xl list`` (or xentop) print.

    Blank flags are an inactive domain xend manages (it has no domain id): SHUTOFF. When
    several flags are set the most final wins: dying > crashed > shutting down > paused >
    running > blocked.
    """
    text = flags.strip()
    if not text:
        return VmState.SHUTOFF
    if len(text) in (5, 6) and _fits(text, _XM_FLAGS):
        blocked, paused = text[1] == "b", text[2] == "p"  # "r" (0) is the default below
        shutdown, crashed = text[3] == "s", text[4] == "c"
        dying = len(text) == 6 and text[5] == "d"
    elif len(text) == 6 and _fits(text, _XENTOP_FLAGS):
        dying, shutdown, blocked = text[0] == "d", text[1] == "s", text[2] == "b"
        crashed, paused = text[3] == "c", text[4] == "p"  # "r" (5) is the default below
    else:
        return VmState.UNKNOWN
    if dying:
        return VmState.DYING
    if crashed:  # xl shows a crash as a shutdown whose reason is "c"
        return VmState.CRASHED
    if shutdown:
        return VmState.SHUTTING_DOWN
    if paused:
        return VmState.PAUSED
    if blocked:
        return VmState.BLOCKED
    # "r" or no flag at all: Xen sets neither r nor b for a domain whose vCPUs are runnable
    # but waiting for a physical CPU at the instant of the sample, common on a busy host.
    return VmState.RUNNING


def _domain_state(flags: str | None, domid: int | None) -> VmState:
    if domid is None and (flags is None or not flags.strip("- \t")):
        return VmState.SHUTOFF  # no domain id: nothing runs, whatever placeholder flags say
    if flags is None:
        return VmState.UNKNOWN  # a live domain whose output does not tell (xl list -l)
    return state_from_flags(flags)
