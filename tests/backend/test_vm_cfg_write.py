"""vm.cfg disk-list editing: every recorded vm.cfg round-trips, only the disk list changes."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg, vm_config
from ovmtui.backend.xen_parse.vm_cfg_write import (
    CfgEditRefused,
    disk_entries,
    entry_source,
    with_disk_added,
    with_disk_removed,
    xen_disk_entry,
)

DATA = Path(__file__).parent.parent / "data" / "xen"
RECORDED = sorted([*(DATA / "vm_cfg").glob("*.txt"), *(DATA / "xen_cfg").glob("*.txt")])
# Whose disk list is not a plain list of strings: ``'phy:sda%d,sda1,w' % (7+vmid)``.
UNEDITABLE = {"xen-tools-examples-xmexample2.txt"}
SHARED = "/OVS/sharedDisk/q.img"
ENTRY = f"file:{SHARED},xvdz,w!"


def test_every_fixture_is_covered() -> None:
    assert len(RECORDED) == 11


@pytest.mark.parametrize(
    "path", [p for p in RECORDED if p.name not in UNEDITABLE], ids=lambda p: p.name
)
def test_recorded_vm_cfg_round_trips(path: Path) -> None:
    text = path.read_text()
    before = disk_entries(text)
    added = with_disk_added(text, ENTRY)
    # Only the disk list changed: every changed line belongs to the disk statement.
    changed = [
        line
        for line in difflib.unified_diff(text.splitlines(), added.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed and all(
        "disk" in line or SHARED in line or line[1:].strip().startswith(("'", '"', "]"))
        for line in changed
    )
    assert disk_entries(added) == (*before, ENTRY)
    # xm reads the new entry as the shared disk it is.
    config = vm_config(parse_vm_cfg(added).value).value
    assert any(d.source == SHARED and d.target == "xvdz" and d.shareable for d in config.disks)
    removed, entry = with_disk_removed(added, SHARED)
    assert entry == ENTRY
    assert removed == text  # byte for byte


@pytest.mark.parametrize(
    "path", [p for p in RECORDED if p.name in UNEDITABLE], ids=lambda p: p.name
)
def test_a_disk_list_that_is_not_a_literal_is_refused(path: Path) -> None:
    text = path.read_text()
    with pytest.raises(CfgEditRefused, match="not a plain string"):
        with_disk_added(text, ENTRY)


def test_multi_line_list_gets_a_line_of_its_own() -> None:
    text = (
        "name = 'a'\ndisk = [\n        'phy:/dev/x,xvda,w',\n"
        "        'file:/y.iso,xvdf:cdrom,r'\n]\nvcpus = 2\n"
    )
    added = with_disk_added(text, ENTRY)
    assert added == (
        "name = 'a'\ndisk = [\n        'phy:/dev/x,xvda,w',\n        'file:/y.iso,xvdf:cdrom,r',\n"
        f"        '{ENTRY}'\n]\nvcpus = 2\n"
    )
    assert with_disk_removed(added, SHARED)[0] == text


def test_comments_quotes_and_crlf_are_kept() -> None:
    text = (
        '# a comment\r\ndisk = [ "file:/a.img,xvda,w", # boot\r\n'
        '  "file:/b.img,xvdb,w" ]  # end\r\nname = "x"\r\n'
    )
    added = with_disk_added(text, ENTRY)
    assert f'"file:/b.img,xvdb,w",\r\n  "{ENTRY}" ]  # end\r\n' in added
    assert with_disk_removed(added, SHARED)[0] == text
    # Removing the second keeps the comment after the first.
    removed, _entry = with_disk_removed(text, "/b.img")
    assert (
        removed
        == '# a comment\r\ndisk = [ "file:/a.img,xvda,w" # boot\r\n ]  # end\r\nname = "x"\r\n'
    )
    assert disk_entries(removed) == ("file:/a.img,xvda,w",)


def test_first_and_only_entries_are_removed_cleanly() -> None:
    text = "disk = ['file:/a.img,xvda,w', 'file:/b.img,xvdb,w']\n"
    assert with_disk_removed(text, "/a.img")[0] == "disk = ['file:/b.img,xvdb,w']\n"
    only = "disk = ['file:/a.img,xvda,w']\n"
    assert with_disk_removed(only, "/a.img")[0] == "disk = []\n"
    assert with_disk_added("disk = []\n", ENTRY) == f"disk = ['{ENTRY}']\n"


def test_a_cfg_without_disks_gets_a_list() -> None:
    assert with_disk_added("name = 'a'", ENTRY) == f"name = 'a'\ndisk = ['{ENTRY}']\n"


def test_unicode_before_the_list_keeps_offsets_right() -> None:
    text = "disk = [u'file:/é/a.img,xvda,w']  # café\n"
    added = with_disk_added(text, ENTRY)
    assert added == f"disk = [u'file:/é/a.img,xvda,w', '{ENTRY}']  # café\n"
    assert with_disk_removed(added, SHARED)[0] == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("disk = ['phy:sda%d,sda1,w' % 7]\n", "not a plain string"),
        ("disk = get_disks()\n", "not a plain list"),
        ("disk = ['file:/a.img,xvda,w']\ndisk = []\n", "set 2 times"),
        ("disk = ['file:/a.img,xvda,w'\n", "does not parse"),
        (f"disk = ['file:{SHARED},xvdc,w']\n", "holds /OVS/sharedDisk/q.img already"),
        ("disk = ['file:/a.img,xvdz,w']\n", "device xvdz is taken"),
    ],
)
def test_what_it_cannot_edit_is_refused(text: str, why: str) -> None:
    with pytest.raises(CfgEditRefused, match=why):
        with_disk_added(text, ENTRY)


def test_removing_what_is_not_there_is_refused() -> None:
    with pytest.raises(CfgEditRefused, match="does not hold"):
        with_disk_removed("disk = ['file:/a.img,xvda,w']\n", SHARED)
    twice = f"disk = ['file:{SHARED},xvdb,w!', 'file:{SHARED},xvdc,w!']\n"
    with pytest.raises(CfgEditRefused, match="2 times"):
        with_disk_removed(twice, SHARED)


def test_entries() -> None:
    assert (
        xen_disk_entry(SHARED, "xvdb", read_only=False, shareable=True) == f"file:{SHARED},xvdb,w!"
    )
    assert xen_disk_entry(SHARED, "xvdb", read_only=True, shareable=True) == f"file:{SHARED},xvdb,r"
    assert (
        xen_disk_entry(SHARED, "xvdb", read_only=False, shareable=False) == f"file:{SHARED},xvdb,w"
    )
    assert entry_source(f"tap:aio:{SHARED},xvdc:disk,w!") == (SHARED, "xvdc", False, True)
    assert entry_source("vdev=hda,target=/x") == (None, None, False, False)
