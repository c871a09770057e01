"""Estate file edits (store/estate_file.py): each keeps the operator's comments and order,
validates as start-up does, writes safely, and refuses what start-up would refuse."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from ovmtui.config import load_estate
from ovmtui.errors import ConfigError
from ovmtui.model import HostRole
from ovmtui.store.estate_file import (
    AddHost,
    AddPool,
    EditHost,
    EstateEdit,
    EstateFile,
    EstateFileChanged,
    HostSpec,
    Promote,
    RemoveHost,
    RemovePool,
    SetRoles,
    backups_of,
    parse_roles,
)

ESTATE = """\
# The production estate: ask Ana before changing it.
repository = "r.sqlite"  # beside this file

# pool a: the old rack
[[pools]]
name = "a"
shared_storage = "/OVS"                    # NFS from the filer

  [[pools.hosts]]
  name = "h1"   # first
  libvirt = "test:///default"              # any libvirt URI
  roles = ["master", "utility", "vm"]      # the pool roles

  # h2: replaced its PSU in May
  [[pools.hosts]]
  name = "h2"
  libvirt = "test:///default"
  roles = ["vm"]

# dev: nothing important
[[pools]]
name = "dev"

  [[pools.hosts]]
  name = "d1"
  libvirt = "test:///default"
# end of file
"""

COMMENTS = (
    "# The production estate: ask Ana before changing it.",
    "# beside this file",
    "# pool a: the old rack",
    "# NFS from the filer",
    "# any libvirt URI",
    "# dev: nothing important",
    "# end of file",
)


@pytest.fixture
def estate_path(tmp_path: Path) -> Path:
    path = tmp_path / "estate.toml"
    path.write_text(ESTATE)
    return path


def _order(text: str) -> list[str]:
    """The names in file order (pools and hosts alike)."""
    return [line.split('"')[1] for line in text.splitlines() if line.strip().startswith("name =")]


@pytest.mark.parametrize(
    ("edit", "order", "gone_comments", "check"),
    [
        (
            AddPool("new", "/OVS2"),
            ["a", "h1", "h2", "dev", "d1", "new"],
            (),
            lambda e: [p.name for p in e.pools][-1] == "new" and e.pools[-1].hosts == (),
        ),
        (
            AddHost("a", "h3", HostSpec(ssh="root@h3.example.com:22", roles=("vm",))),
            ["a", "h1", "h2", "h3", "dev", "d1"],
            (),
            lambda e: e.pools[0].hosts[-1].ssh == "root@h3.example.com:22",
        ),
        (
            AddHost("dev", "d2", HostSpec(libvirt="test:///default", toolstack=None)),
            ["a", "h1", "h2", "dev", "d1", "d2"],
            (),
            lambda e: [h.name for h in e.pools[1].hosts] == ["d1", "d2"],
        ),
        (
            RemoveHost("h2"),
            ["a", "h1", "dev", "d1"],
            ("# h2: replaced its PSU in May",),
            lambda e: [h.name for h in e.pools[0].hosts] == ["h1"],
        ),
        (
            RemoveHost("h1"),
            ["a", "h2", "dev", "d1"],
            ("# any libvirt URI",),  # on h1's own line; h2's comment stays above h2
            lambda e: [h.name for h in e.pools[0].hosts] == ["h2"],
        ),
        (
            RemoveHost("d1"),
            ["a", "h1", "h2", "dev"],
            (),
            lambda e: e.pools[1].hosts == (),
        ),
        (
            SetRoles("h2", ("utility", "vm")),
            ["a", "h1", "h2", "dev", "d1"],
            (),
            lambda e: e.pools[0].hosts[1].roles == (HostRole.UTILITY, HostRole.VM),
        ),
        (
            SetRoles("d1", ("vm",)),
            ["a", "h1", "h2", "dev", "d1"],
            (),
            lambda e: e.pools[1].hosts[0].roles == (HostRole.VM,),
        ),
        (
            Promote("h2", "h1 lost its disk"),
            ["a", "h1", "h2", "dev", "d1"],
            (),
            lambda e: (
                e.pools[0].hosts[0].roles == (HostRole.UTILITY, HostRole.VM)
                and e.pools[0].hosts[1].roles == (HostRole.MASTER, HostRole.VM)
            ),
        ),
        (
            EditHost("h2", HostSpec(ssh="root@10.0.0.2", identity="~/.ssh/ops", roles=("vm",))),
            ["a", "h1", "h2", "dev", "d1"],
            (),
            lambda e: (
                e.pools[0].hosts[1].ssh == "root@10.0.0.2" and e.pools[0].hosts[1].libvirt is None
            ),
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, EstateEdit) else "",
)
def test_each_edit_keeps_comments_and_order(
    estate_path: Path,
    edit: EstateEdit,
    order: list[str],
    gone_comments: tuple[str, ...],
    check: object,
) -> None:
    file = EstateFile.read(estate_path)
    text = file.edited(edit)
    assert _order(text) == order
    for comment in (*COMMENTS, "# h2: replaced its PSU in May"):
        assert (comment in text) is (comment not in gone_comments), comment
    # A comment above a table stays directly above that table.
    if "dev" in order:
        lines = text.splitlines()
        at = lines.index("# dev: nothing important")
        assert lines[at + 1] == "[[pools]]" and lines[at + 2] == 'name = "dev"'
    assert callable(check)
    written, _backup = file.write(text)
    assert check(load_estate(estate_path))
    assert written.estate == load_estate(estate_path)


def test_added_tables_take_their_siblings_indentation(estate_path: Path) -> None:
    text = EstateFile.read(estate_path).edited(
        AddHost("a", "h3", HostSpec(libvirt="test:///default", roles=("vm",)))
    )
    block = text.split('name = "h3"')[0].rsplit("\n\n", 1)[-1] + 'name = "h3"'
    assert block == '  [[pools.hosts]]\n  name = "h3"'
    assert '  libvirt = "test:///default"\n  roles = ["vm"]\n\n# dev' in text


def test_an_untouched_file_comes_back_byte_for_byte(estate_path: Path) -> None:
    """Setting the roles a host already has changes nothing else in the file."""
    text = EstateFile.read(estate_path).edited(SetRoles("h2", ("vm",)))
    assert text == ESTATE


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (AddPool("a"), "pool 'a' exists already"),
        (AddPool("bad name"), "expected a name"),
        (AddPool("z", "relative/path"), "not an absolute path"),
        (AddHost("a", "d1", HostSpec(libvirt="test:///default")), "host 'd1' exists already"),
        (AddHost("nope", "h9", HostSpec(libvirt="test:///default")), "no pool 'nope'"),
        (AddHost("a", "h9", HostSpec()), "no connection"),
        (AddHost("a", "h9", HostSpec(libvirt="not a uri")), "a space at character 4"),
        (AddHost("a", "h9", HostSpec(libvirt="qemu+ssh://-oProxy@h/system")), "user"),
        (AddHost("a", "h9", HostSpec(ssh="root@bad_host!")), "is not a host name"),
        (AddHost("a", "h9", HostSpec(ssh="root@h:99999")), "out of range"),
        (
            AddHost("a", "h9", HostSpec(libvirt="test:///default", roles=("master",))),
            "more than one master",
        ),
        (AddHost("a", "h9", HostSpec(libvirt="test:///default", roles=("boss",))), "unknown role"),
        (
            AddHost("a", "h9", HostSpec(ssh="root@h9", toolstack="xe")),
            "expected auto, xm or xl",
        ),
        (
            AddHost("a", "h9", HostSpec(libvirt="test:///default", ssh="root@h9")),
            "either libvirt or ssh",
        ),
        (RemoveHost("h9"), "no host 'h9'"),
        (RemovePool("a"), "still has hosts (h1, h2)"),
        (RemovePool("nope"), "no pool 'nope'"),
        (SetRoles("h2", ("master",)), "more than one master"),
        (SetRoles("h2", ("vm", "admin")), "unknown role 'admin'"),
        (Promote("h1", "why not"), "is the master of pool a already"),
        (Promote("h2", "  "), "needs a reason"),
        (EditHost("h2", HostSpec(ssh="root@[::1")), "IPv6"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, EstateEdit) else "",
)
def test_every_refusal_leaves_the_file_unchanged(
    estate_path: Path, edit: EstateEdit, message: str
) -> None:
    before = estate_path.read_bytes()
    file = EstateFile.read(estate_path)
    with pytest.raises(ConfigError) as caught:
        file.edited(edit)
    assert message in str(caught.value)
    assert estate_path.read_bytes() == before
    assert backups_of(estate_path) == []


def test_the_last_pool_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "estate.toml"
    path.write_text('[[pools]]\nname = "only"\n')
    with pytest.raises(ConfigError, match="the estate's last"):
        EstateFile.read(path).edited(RemovePool("only"))


def test_a_pool_emptied_then_removed(estate_path: Path) -> None:
    file = EstateFile.read(estate_path)
    file, _ = file.write(file.edited(RemoveHost("d1")))
    file, _ = file.write(file.edited(RemovePool("dev")))
    text = estate_path.read_text()
    assert _order(text) == ["a", "h1", "h2"]
    assert "# end of file" in text and "# dev: nothing important" not in text


def test_a_write_keeps_the_previous_version_and_the_mode(estate_path: Path) -> None:
    os.chmod(estate_path, 0o640)
    file = EstateFile.read(estate_path)
    at = dt.datetime(2026, 12, 7, 3, 4, 5, tzinfo=dt.UTC)
    written, backup = file.write(file.edited(SetRoles("h2", ("utility",))), now=at)
    assert backup.name == "estate.toml.20261207T030405Z.bak"
    assert backup.read_text() == ESTATE
    assert estate_path.stat().st_mode & 0o777 == 0o640
    assert written.text == estate_path.read_text() != ESTATE
    # A second edit in the same second keeps both versions.
    _, second = written.write(written.edited(SetRoles("h2", ("vm",))), now=at)
    assert second.name == "estate.toml.20261207T030405Z_2.bak"
    assert backups_of(estate_path) == [backup, second]
    assert not [p for p in estate_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_file_changed_on_disk_is_refused_never_overwritten(estate_path: Path) -> None:
    file = EstateFile.read(estate_path)
    text = file.edited(AddPool("new"))
    someone = ESTATE.replace("# end of file", "# edited by hand meanwhile")
    estate_path.write_text(someone)
    with pytest.raises(EstateFileChanged, match="changed on disk"):
        file.write(text)
    assert estate_path.read_text() == someone
    assert backups_of(estate_path) == []


def test_a_symlinked_estate_file_stays_a_symlink(tmp_path: Path, estate_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(estate_path)
    file = EstateFile.read(link)
    file.write(file.edited(AddPool("new")))
    assert link.is_symlink()
    assert [p.name for p in load_estate(estate_path).pools] == ["a", "dev", "new"]


def test_roles_are_read_from_a_comma_list() -> None:
    assert parse_roles("master, vm,,utility ") == ("master", "vm", "utility")
    assert parse_roles("") == ()


def test_a_removed_hosts_comment_goes_and_the_next_ones_stays(estate_path: Path) -> None:
    text = EstateFile.read(estate_path).edited(RemoveHost("h1"))
    lines = text.splitlines()
    at = lines.index("  # h2: replaced its PSU in May")
    assert lines[at + 1 : at + 3] == ["  [[pools.hosts]]", '  name = "h2"']
    assert lines[at - 1] == "" and lines[at - 2].startswith("shared_storage")
