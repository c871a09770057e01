"""The library's rules, pure: what may be registered, approved, deleted, and why not.

Each refusal is a sentence an operator understands at 3 a.m.; ``None`` means allowed.
"""

from __future__ import annotations

from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg
from ovmtui.storage_model import (
    DiskFormat,
    ResourceKind,
    ResourceStatus,
    StorageRow,
    is_utf8,
    shown,
)

# A vm.cfg bigger than this is no template's: read no more of it.
VM_CFG_MAX_BYTES = 256 * 1024

REGISTERABLE = (ResourceKind.TEMPLATE, ResourceKind.ISO, ResourceKind.SHARED_DISK)


def register_refusal(row: StorageRow, vm_cfg: bytes | None = None) -> str | None:
    """Why ``row`` cannot be registered, or None. ``vm_cfg``: a template's vm.cfg as read
    through the host (None where the host reads no files: libvirt, whose templates are
    images or folders of its storage pool)."""
    entry = row.entry
    if entry is None:
        return f"{shown(row.name)}: no longer on the storage"
    if not is_utf8(row.path):
        return f"{shown(row.name)}: its name is not UTF-8: rename it on the storage first"
    if row.resource is not None and not row.resource.missing:
        return f"{shown(row.name)}: already in the library ({row.resource.status_text})"
    if row.kind is ResourceKind.VM:
        return f"{shown(row.name)}: a VM's folder is the VM itself, not a library resource"
    if row.kind is ResourceKind.PUBLISHED:
        return f"{shown(row.name)}: published VMs are listed, not registered"
    if row.kind is ResourceKind.ISO:
        if entry.format is not DiskFormat.ISO:
            return f"{shown(row.name)}: not an ISO image (no ISO 9660 signature at byte 32769)"
        return None
    if row.kind is ResourceKind.SHARED_DISK:
        if entry.is_dir or entry.format not in (DiskFormat.RAW, DiskFormat.QCOW2):
            return f"{shown(row.name)}: not a disk image (a raw or qcow2 file)"
        return None
    return _template_refusal(row, vm_cfg)


def _template_refusal(row: StorageRow, vm_cfg: bytes | None) -> str | None:
    entry = row.entry
    assert entry is not None
    if vm_cfg is None:
        if entry.is_dir or entry.format in (DiskFormat.RAW, DiskFormat.QCOW2):
            return None
        return f"{shown(row.name)}: a template is a folder or a disk image"
    if not entry.is_dir:
        return f"{shown(row.name)}: a template is a folder holding a vm.cfg"
    if entry.has_vm_cfg is False:
        return f"{shown(row.name)}: the folder holds no vm.cfg"
    text = vm_cfg.decode("utf-8", "replace")
    parsed = parse_vm_cfg(text, f"{shown(row.name)}/vm.cfg")
    if parsed.issues:
        first = parsed.issues[0]
        return f"{shown(row.name)}: its vm.cfg does not parse: {first}"
    if not parsed.value:
        return f"{shown(row.name)}: its vm.cfg sets nothing"
    return None


def approve_refusal(row: StorageRow) -> str | None:
    resource = row.resource
    if resource is None:
        return f"{shown(row.name)}: not in the library: register it first"
    if resource.missing:
        return f"{shown(row.name)}: no longer on the storage"
    if resource.status is ResourceStatus.APPROVED:
        return f"{shown(row.name)}: already approved by {resource.approved_by or 'someone'}"
    if resource.status is not ResourceStatus.PENDING:
        status = resource.status_text
        return f"{shown(row.name)}: only a pending resource is approved (this one is {status})"
    return None


def delete_refusal(row: StorageRow) -> str | None:
    if row.kind is ResourceKind.VM:
        return f"{shown(row.name)}: a VM's folder is deleted with its VM, not from the library"
    if row.used_by:
        users = ", ".join(f"{u.vm} ({u.mode.value}, {u.state.value})" for u in row.used_by)
        return f"{shown(row.name)}: in use by {users}"
    if row.resource is not None and row.resource.status is ResourceStatus.IMPORTING:
        return f"{shown(row.name)}: an import is under way: cancel it instead"
    return None
