from __future__ import annotations

from pathlib import Path

import pytest

from ovmtui.config import default_config_path, load_estate, parse_estate
from ovmtui.errors import ConfigError
from ovmtui.model import HostRole

GOOD = """
repository = "repo.sqlite"

[[pools]]
name = "pool-a"
shared_storage = "/OVS"

  [[pools.hosts]]
  name = "h1"
  libvirt = "qemu+ssh://root@h1/system"
  roles = ["master", "utility", "vm"]

  [[pools.hosts]]
  name = "h2"
  libvirt = "test:///default"

[[pools]]
name = "pool-b"

  [[pools.hosts]]
  name = "ovs7"
  ssh = "root@ovs7.example.com:22"
  toolstack = "xm"
"""


def test_good_estate_parses() -> None:
    estate = parse_estate(GOOD, "estate.toml", base_dir=Path("/etc/ovmtui"))
    assert [p.name for p in estate.pools] == ["pool-a", "pool-b"]
    h1, h2 = estate.pools[0].hosts
    assert h1.roles == (HostRole.MASTER, HostRole.UTILITY, HostRole.VM)
    assert h1.address == "qemu+ssh://root@h1/system"
    assert h2.roles == ()
    assert estate.pools[0].shared_storage == "/OVS"
    assert estate.pools[1].hosts[0].toolstack == "xm"
    assert estate.repository == Path("/etc/ovmtui/repo.sqlite")
    assert [h.name for h in estate.hosts] == ["h1", "h2", "ovs7"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[pools]\nname = 'x'", "not valid TOML"),
        ("", "expected at least one [[pools]]"),
        ("colour = 'red'\n[[pools]]\nname='a'", "estate.toml:1: unknown key 'colour'"),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n"
            "colour = 'red'\n",
            "estate.toml:6: pool 'a': hosts[0]: unknown key 'colour'",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\n",
            "host 'h1': no connection",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n"
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h2'\nlibvirt = 'test:///default'\n",
            "duplicate pool name",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n"
            "[[pools]]\nname = 'b'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n",
            "duplicate host name (already in pool 'a')",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n"
            "roles = ['boss']\n",
            "estate.toml:6: pool 'a': host 'h1': roles: unknown role 'boss'",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname = 'h1'\nlibvirt = 'test:///default'\n"
            "roles = ['master']\n[[pools.hosts]]\nname = 'h2'\nlibvirt = 'test:///default'\n"
            "roles = ['master']\n",
            "more than one master",
        ),
        ("[[pools]]\nname = 'a'\n", "expected at least one [[pools.hosts]]"),
        (
            "[[pools]]\nname = 'a b'\n[[pools.hosts]]\nname='h'\nlibvirt='test:///default'\n",
            "name: expected a name",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname='h'\nlibvirt='test:///default'\n"
            "ssh='root@h'\n",
            "either libvirt or ssh",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname='h'\nssh='root@h'\ntoolstack='xx'\n",
            "toolstack: expected auto, xm or xl",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname='h'\nssh='root@h:port'\n",
            "estate.toml:5: pool 'a': host 'h': ssh: expected user@host[:port]",
        ),
        (
            "[[pools]]\nname = 'a'\n[[pools.hosts]]\nname='h'\nssh='root@h'\njump='a b'\n",
            "jump: expected user@host[:port]",
        ),
        ("pools = 3", "expected at least one [[pools]]"),
        ("repository = 3\n[[pools]]\nname='a'", "repository: expected a file path"),
    ],
)
def test_errors_name_file_key_and_expectation(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_estate(text, "estate.toml")
    message = str(info.value)
    assert message.startswith("estate.toml"), message
    assert expected in message, message


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file.*--demo"):
        load_estate(tmp_path / "nope.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_estate(binary)


def test_default_path_follows_xdg() -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/ovmtui/estate.toml")
    assert default_config_path({"HOME": "/home/op"}) == Path("/home/op/.config/ovmtui/estate.toml")
