"""Turns an estate file's host entry into the backend that can reach it."""

from __future__ import annotations

from ovmtui.backend.base import Backend
from ovmtui.config import HostConfig
from ovmtui.errors import ConfigError


def backend_for(host: HostConfig) -> Backend:
    if host.libvirt is not None:
        # Imported here so that commands which never reach a libvirt host (and tests of the
        # services) do not pay for loading libvirt.
        from ovmtui.backend.libvirt import LibvirtBackend

        return LibvirtBackend(host.key, host.libvirt)
    raise ConfigError(
        f"host '{host.name}': Xen hosts over SSH (ssh = ...) are not supported by this version"
    )
