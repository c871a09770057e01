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
    if host.ssh is not None:
        # asyncssh is loaded only when an estate has Xen hosts.
        from ovmtui.backend.xen_ssh import XenSshBackend

        toolstack = host.toolstack if host.toolstack in ("xm", "xl") else "auto"
        return XenSshBackend(
            host.key,
            host.ssh,
            identity=host.identity,
            known_hosts=host.known_hosts,
            toolstack=toolstack,  # type: ignore[arg-type]  # checked by the config parser
            jump=host.jump,
            shared_storage=host.shared_storage,
        )
    raise ConfigError(f"host '{host.name}': no connection (libvirt = or ssh =)")
