"""The pool's storage read over SSH from a fake dom0 whose shared storage is a real folder:
one command for the whole layout, every entry found with its sizes and format, names with
spaces, a newline, ``;`` or non-UTF-8 bytes kept whole, nothing executed; delete within the
layout only."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.base import CommandOutput
from ovmtui.backend.xen_storage import ISO_MAGIC, ISO_OFFSET, parse_scan, scan_argv
from ovmtui.errors import ActionRefused, ParseError
from ovmtui.storage_model import DiskFormat, ResourceKind, StorageEntry
from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_host

__all__ = ["fake_xen_host"]  # a pytest fixture

ISO_LOOP = """
    for f; do
      s=$(dd if="$f" bs=1 skip=32769 count=5 2>/dev/null)
      [ "$s" = CD001 ] && printf "I\\0%s\\0" "$f"
    done"""
QCOW2_HEADER = b"QFI\xfb\0\0\0\x03" + b"\0" * 56


def make_iso(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.seek(ISO_OFFSET)
        f.write(ISO_MAGIC + b"\x01" + b"\0" * 2042)


def nothing_ran(root: Path) -> bool:
    """No file ``pwned`` anywhere a ``touch pwned`` could have made it."""
    return not list(root.parent.rglob("pwned")) and not (Path.home() / "pwned").exists()


def make_layout(root: Path) -> None:
    """Oracle VM's layout, with the names that break naive listings."""
    (root / "running_pool" / "web01").mkdir(parents=True)
    (root / "running_pool" / "web01" / "vm.cfg").write_text("name = 'web01'\n")
    (root / "running_pool" / "web01" / "System.img").write_bytes(QCOW2_HEADER)
    (root / "seed_pool" / "OVM EL5 64").mkdir(parents=True)
    (root / "seed_pool" / "OVM EL5 64" / "vm.cfg").write_text("name = 'tpl'\ndisk = []\n")
    (root / "seed_pool" / "OVM EL5 64" / "System.img").write_bytes(b"\0" * 10000)
    make_iso(root / "iso_pool" / "el5" / "el5.iso")
    (root / "iso_pool" / "notes.txt").write_text("hi")
    shared = root / "sharedDisk"
    shared.mkdir()
    with (shared / "quorum.img").open("wb") as f:  # sparse: 1 MiB apparent, nothing allocated
        f.truncate(1 << 20)
    (shared / "x; touch pwned").write_bytes(b"abc")
    (shared / "two\nlines.img").write_bytes(QCOW2_HEADER)
    (shared / os.fsdecode(b"caf\xe9.img")).write_bytes(b"")
    # publish_pool is missing: a fresh storage.


async def test_one_command_lists_the_whole_layout(fake_xen_host: Any, tmp_path: Path) -> None:
    root = tmp_path / "OVS"
    make_layout(root)
    backend = backend_for(fake_xen_host)
    try:
        fake_xen_host.clear_argv_log()
        scan = await backend.list_storage("p1", str(root))
    finally:
        await backend.close()
    assert scan.missing_folders == ("publish_pool",)
    assert scan.warnings == ()
    assert scan.commands == 1
    by_name = {(e.kind, e.name): e for e in scan.entries}
    assert sorted((k.value, n) for k, n in by_name) == sorted(
        [
            ("vm", "web01"),
            ("template", "OVM EL5 64"),
            ("iso", "el5"),
            ("iso", "notes.txt"),
            ("shared-disk", "quorum.img"),
            ("shared-disk", "x; touch pwned"),
            ("shared-disk", "two\nlines.img"),
            ("shared-disk", os.fsdecode(b"caf\xe9.img")),
        ]
    )
    web = by_name[(ResourceKind.VM, "web01")]
    assert web.is_dir and web.has_vm_cfg and web.path == f"{root}/running_pool/web01"
    assert web.size_bytes == len(QCOW2_HEADER) + len("name = 'web01'\n")
    template = by_name[(ResourceKind.TEMPLATE, "OVM EL5 64")]
    assert template.has_vm_cfg and template.format is DiskFormat.DIR
    assert by_name[(ResourceKind.ISO, "el5")].format is DiskFormat.ISO
    assert by_name[(ResourceKind.ISO, "notes.txt")].format is DiskFormat.RAW
    quorum = by_name[(ResourceKind.SHARED_DISK, "quorum.img")]
    assert (quorum.size_bytes, quorum.format) == (1 << 20, DiskFormat.RAW)
    assert quorum.allocated_bytes is not None and quorum.allocated_bytes < 1 << 20
    assert by_name[(ResourceKind.SHARED_DISK, "two\nlines.img")].format is DiskFormat.QCOW2
    assert by_name[(ResourceKind.SHARED_DISK, os.fsdecode(b"caf\xe9.img"))].format is None
    assert (
        quorum.mtime is not None and abs(quorum.mtime - (root / "sharedDisk").stat().st_mtime) < 5
    )
    assert nothing_ran(root)
    # One listing, whatever the number of files: the same three finds, exactly these.
    folders = ["running_pool", "seed_pool", "iso_pool", "sharedDisk"]
    depth = ["-mindepth", "1", "-maxdepth", "2"]
    assert fake_xen_host.argv_log() == [
        ["find", *folders, *depth, "-printf", "D\\0%y\\0%s\\0%b\\0%T@\\0%p\\0"],
        ["find", "iso_pool", *depth, "-type", "f", "-exec", "sh", "-c", ISO_LOOP, "sh", "{}", "+"],
        ["find", *folders, *depth, "-type", "f", "-print0"],
    ]
    assert scan_argv(str(root))[3:5] == ["sh", str(root)]  # the storage: an argument


async def test_delete_within_the_layout_only(fake_xen_host: Any, tmp_path: Path) -> None:
    root = tmp_path / "OVS"
    make_layout(root)
    backend = backend_for(fake_xen_host)
    try:
        scan = await backend.list_storage("p1", str(root))
        target = next(e for e in scan.entries if e.name.startswith("x; touch"))
        assert backend.delete_command("p1", target) == shlex.join(["rm", "-f", "--", target.path])
        await backend.delete_entry("p1", str(root), target)
        template = next(e for e in scan.entries if e.kind is ResourceKind.TEMPLATE)
        await backend.delete_entry("p1", str(root), template)
        for outside in (str(root), f"{root}/sharedDisk", f"{root}/sharedDisk/../../etc"):
            entry = StorageEntry(ResourceKind.SHARED_DISK, "x", outside, is_dir=True)
            with pytest.raises(ActionRefused, match="not inside a folder"):
                await backend.delete_entry("p1", str(root), entry)
    finally:
        await backend.close()
    assert not (root / "sharedDisk" / target.name).exists()
    assert not (root / "seed_pool" / "OVM EL5 64").exists()
    assert (root / "sharedDisk" / "quorum.img").exists()
    assert nothing_ran(root)


async def test_a_storage_that_is_not_there_is_a_clear_error(
    fake_xen_host: Any, tmp_path: Path
) -> None:
    backend = backend_for(fake_xen_host)
    try:
        with pytest.raises(Exception, match="cannot enter"):
            await backend.list_storage("p1", str(tmp_path / "nowhere"))
    finally:
        await backend.close()


@pytest.mark.parametrize(
    "stdout",
    [b"D\0f\0" + b"12", b"X\0what\0", b"D\0f\0big\0\x30\0" + b"1.0\0sharedDisk/a\0"],
)
def test_malformed_output_is_a_parse_error(stdout: bytes) -> None:
    with pytest.raises(ParseError, match="listing of /OVS"):
        parse_scan(CommandOutput(0, stdout, b""), "/OVS")


def test_files_changing_during_the_listing_tell_no_format() -> None:
    out = b"D\0f\0" + b"8\0" + b"8\0" + b"1.5\0" + b"sharedDisk/a.img\0" + b"H\0" + b"QF"
    scan = parse_scan(CommandOutput(0, out, b""), "/OVS")
    assert scan.entries[0].format is None and "formats not told" in scan.warnings[0]
