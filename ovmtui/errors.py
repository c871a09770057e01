"""Errors with a human title. Backends translate library errors into these."""

from __future__ import annotations


class OvmError(Exception):
    """Base of every error ovmtui reports to an operator.

    ``title`` is a short headline ("Host unreachable"); ``str(error)`` is the detail.
    """

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(OvmError):
    """The estate file is wrong; reported before the UI starts (exit 2)."""

    title = "Invalid estate file"


class HostUnreachable(OvmError):
    title = "Host unreachable"


class HostTimeout(HostUnreachable):
    title = "Host timed out"


class ActionFailed(OvmError):
    title = "Action failed"


class ActionRefused(OvmError):
    """ovmtui itself refused (read-only mode, wrong state, missing capability)."""

    title = "Action refused"


class ConsoleUnavailable(OvmError):
    """The VM's console cannot be had: not running, unknown to the host, or in use."""

    title = "No console"


class VmNotFound(OvmError):
    title = "VM not found"


class ParseError(OvmError):
    title = "Unreadable output"


class RepositoryError(OvmError):
    """The repository file cannot be used (corrupt, foreign, newer schema); nothing was changed."""

    title = "Repository problem"


class ArchiveError(OvmError):
    """A definitions archive that cannot be trusted (corrupt, foreign, tampered) or written."""

    title = "Unusable definitions archive"


class ForeignBackup(RepositoryError):
    """A restore candidate that is not known as this repository's backup (asked, not done)."""

    title = "Backup of another repository"
