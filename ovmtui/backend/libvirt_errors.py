"""libvirt's errors read the one way every libvirt backend module needs: its words on one
line, its code, and whether it says the connection is gone (as opposed to a refusal)."""

from __future__ import annotations

from typing import Any

import libvirt

# Errors that say "the connection is gone", as opposed to "the host refused this request".
_CONNECTION_ERROR_CODES = frozenset(
    {
        libvirt.VIR_ERR_INVALID_CONN,
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_AUTH_FAILED,
        libvirt.VIR_ERR_AUTH_CANCELLED,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
    }
)
_CONNECTION_ERROR_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})


def message(exc: Any) -> str:
    """libvirt's own words, on one line (some messages carry a remote stderr)."""
    try:
        text = exc.get_error_message()
    except Exception:
        text = None
    return " ".join(str(text or exc or "unknown libvirt error").split())


def code(exc: Any) -> int | None:
    """libvirt's error code (``VIR_ERR_…``), or None for what is not a libvirt error."""
    try:
        value = exc.get_error_code()
    except Exception:
        return None
    return value if isinstance(value, int) else None


def is_connection_error(exc: Any) -> bool:
    """Whether ``exc`` says the connection is gone rather than that the host refused."""
    value = code(exc)
    if value in _CONNECTION_ERROR_CODES:
        return True
    try:
        domain = exc.get_error_domain()
    except Exception:
        return False
    return value == libvirt.VIR_ERR_SYSTEM_ERROR and domain in _CONNECTION_ERROR_DOMAINS
