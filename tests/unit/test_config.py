from __future__ import annotations

import json
import re
import time
import tracemalloc
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
        ("[[pools]]\nname = 'a'\nhosts = 3\n", "expected [[pools.hosts]] tables"),
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


# --- Issue 11, point 10: clear words for bad input -------------------------------------------

TWO_POOLS = """\
[[pools]]
name = "a"
  [[pools.hosts]]
  name = "h1"
  ssh = "root@h1"
[[pools]]
name = "b"
  [[pools.hosts]]
  name = "h2"
  ssh = "root@h2"
  [[pools.hosts]]
  name = "h1"
  ssh = "root@h3"
"""


def short(value: str) -> str:
    """A test id that does not spell out a value of thousands of characters."""
    return value if len(value) <= 40 else f"{value[:20]}...({len(value)})"


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_estate(text, "estate.toml")
    return str(info.value)


def host_with(line: str, *, pool: str = "a") -> str:
    """An estate of one host whose last line (line 5) is the one under test."""
    return f"[[pools]]\nname = '{pool}'\n[[pools.hosts]]\nname = 'h'\n{line}\n"


def test_duplicate_host_points_at_the_duplicate_and_names_the_first() -> None:
    message = config_error(TWO_POOLS)
    assert message.startswith("estate.toml:12: "), message
    assert "duplicate host name" in message and "pool 'a'" in message and "line 4" in message


def test_duplicate_host_in_the_same_pool_points_at_the_duplicate() -> None:
    text = host_with("ssh = 'root@h'") + "[[pools.hosts]]\nname = 'h'\nssh = 'root@h2'\n"
    message = config_error(text)
    assert message.startswith("estate.toml:7: "), message
    assert "line 4" in message


def test_duplicate_pool_points_at_the_second_pool() -> None:
    text = TWO_POOLS.replace('name = "b"', 'name = "a"').replace(
        'name = "h1"\n  ssh = "root@h3"', 'name = "h3"\n  ssh = "root@h3"'
    )
    message = config_error(text)
    assert message.startswith("estate.toml:7: "), message
    assert "duplicate pool name" in message and "line 2" in message


@pytest.mark.parametrize(
    ("bad", "line", "expected"),
    [
        ('  ssh = "root@h3:port"', 15, "ssh: expected user@host[:port]"),
        ('  toolstack = "xx"', 16, "toolstack: expected auto, xm or xl"),
        ('  roles = ["boss"]', 16, "roles: unknown role 'boss'"),
        ('  colour = "red"', 16, "unknown key 'colour'"),
    ],
)
def test_errors_in_a_later_host_point_at_that_host(bad: str, line: int, expected: str) -> None:
    # Every host has the keys; the error is in the last one, not the first that mentions them.
    text = TWO_POOLS.replace('"root@h1"', '"root@h1"\n  toolstack = "xm"\n  roles = ["vm"]')
    text = text.replace('  name = "h1"\n  ssh = "root@h3"', '  name = "h3"\n  ssh = "root@h3"')
    if bad.startswith("  ssh"):
        text = text.replace('  ssh = "root@h3"', bad)
    else:
        text += bad + "\n"
    message = config_error(text)
    assert message.startswith(f"estate.toml:{line}: "), message
    assert expected in message, message


def test_second_master_points_at_its_roles() -> None:
    text = (
        host_with("ssh = 'root@h'\nroles = ['master']")
        + "[[pools.hosts]]\nname = 'h2'\nssh = 'root@h2'\nroles = ['vm', 'master']\n"
    )
    message = config_error(text)
    assert message.startswith("estate.toml:10: "), message
    assert "more than one master (h, h2)" in message


def test_host_without_a_name_points_at_its_table() -> None:
    text = host_with("ssh = 'root@h'") + "[[pools.hosts]]\nssh = 'root@h2'\n"
    message = config_error(text)
    assert message.startswith("estate.toml:6: pool 'a': hosts[1]: name: missing"), message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ssh = 'root@h:99999'", "ssh: port 99999 is out of range: expected 1 to 65535"),
        ("ssh = 'root@h:0'", "ssh: port 0 is out of range"),
        ("ssh = 'root@[::1]:65536'", "ssh: port 65536 is out of range"),
        ("ssh = 'root@h'\njump = 'ops@b:70000'", "jump: port 70000 is out of range"),
        ("libvirt = 'qemu+tcp://h:99999/system'", "libvirt: port 99999 is out of range"),
    ],
)
def test_port_out_of_range_names_file_and_line(line: str, expected: str) -> None:
    message = config_error(host_with(line))
    at = 6 if "jump" in line else 5
    assert message.startswith(f"estate.toml:{at}: pool 'a': host 'h': "), message
    assert expected in message, message


BAD_TARGETS = [
    "root@h;id",
    "root@h'x",
    "root@h`id`",
    "root@$(id)",
    "root@h|x",
    "root@-oProxyCommand=x",
    "root@h_1",
    "root@-h",
    "root@h-",
    "root@a..b",
    "root@.h",
    "root@" + "a" * 64 + ".example",
    "root@" + ".".join(["a" * 63] * 4),  # 255 characters
    "root@999.1.1.1",
    "root@10.0.0",
    "root@[::g]",
    "root@[::1",
    "root@[h1]",
    "root@::1",
    "root@h:",
    "root@",
    "@h",
    "r;t@h",
    "r t@h",
    "-oProxyCommand=x@h",
    "$(id)@h",
    "r'@h",
    "a" * 33 + "@h",
    "root@h\u00e9",
    "root@h\u200b",
]


@pytest.mark.parametrize("target", BAD_TARGETS, ids=short)
def test_ssh_target_host_and_user_are_checked(target: str) -> None:
    message = config_error(host_with(f"ssh = {json.dumps(target)}"))
    assert message.startswith("estate.toml:5: pool 'a': host 'h': ssh: "), message
    assert "expected" in message


@pytest.mark.parametrize("target", BAD_TARGETS, ids=short)
def test_jump_target_is_checked_like_ssh(target: str) -> None:
    message = config_error(host_with(f"ssh = 'root@h'\njump = {json.dumps(target)}"))
    assert message.startswith("estate.toml:6: pool 'a': host 'h': jump: "), message


@pytest.mark.parametrize(
    "uri",
    [
        "qemu+ssh://root@h;id/system",
        "qemu+ssh://root@-oProxyCommand=x/system",
        "qemu+ssh://r;t@h/system",
        "qemu+ssh://root@h_1/system",
        "qemu+tcp://999.1.1.1/system",
        "qemu+ssh://root@h/sys tem",
        "qemu+ssh://root@h/system\n",
        "no scheme",
        "qemu+ssh://root@h:\uff12\uff12/system",
    ],
)
def test_libvirt_uri_host_and_user_are_checked(uri: str) -> None:
    message = config_error(host_with(f"libvirt = {json.dumps(uri)}"))
    assert message.startswith("estate.toml:5: pool 'a': host 'h': libvirt: "), message


GOOD_TARGETS = [
    "root@ovs7.example.com:22",
    "ovs7",
    "ovs7:2222",
    "root@10.0.0.2",
    "root@127.0.0.1:1",
    "root@[::1]:22",
    "root@[::1]",
    "root@[fe80::1%eth0]:22",
    "ops-1.x_y@h",
    "_svc@h",
    "root@OVS7.Example.COM",
    "root@xn--bcher-kva.example",
    "root@1host.example",
    "root@" + "a" * 63 + ".example",
    "root@" + ".".join(["a" * 63] * 3 + ["a" * 61]),  # 253 characters
    "a" * 32 + "@h",
]


@pytest.mark.parametrize("target", GOOD_TARGETS, ids=short)
def test_good_ssh_and_jump_targets_are_accepted(target: str) -> None:
    estate = parse_estate(
        host_with(f"ssh = {json.dumps(target)}\njump = {json.dumps(target)}"), "e"
    )
    assert estate.hosts[0].ssh == target and estate.hosts[0].jump == target


@pytest.mark.parametrize(
    "uri",
    [
        "test:///default",
        "qemu+ssh://root@h1/system",
        "qemu+tcp://10.0.0.2/system",
        "qemu+tcp://127.0.0.1:1/system",
        "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
        "xen+ssh://root@ovs7.example.com/",
        "qemu+ssh://root@[::1]:22/system",
        "qemu+ssh://root@127.0.0.1:2201/system?socket=/run/libvirt/libvirt-sock"
        "&keyfile=/w/.lab/ssh/id_ed25519&command=/w/.lab/ssh/ssh",
        "test:///tmp/a%20b/node.xml",
        "qemu:///system",
    ],
)
def test_good_libvirt_uris_are_accepted(uri: str) -> None:
    assert parse_estate(host_with(f"libvirt = {json.dumps(uri)}"), "e").hosts[0].libvirt == uri


@pytest.mark.parametrize(
    "line",
    [
        "ssh = 'root@h:\uff12\uff12'",  # full-width 22
        "ssh = 'root@h:\u0662\u0662'",  # Arabic-Indic 22
        "ssh = 'root@\uff11\uff10.0.0.1'",
        "ssh = 'root@h'\njump = 'ops@b:\uff12\uff12'",
        "libvirt = 'qemu+tcp://h:\uff12\uff12/system'",
    ],
)
def test_numbers_are_ascii_digits_only(line: str) -> None:
    message = config_error(host_with(line))
    assert message.startswith("estate.toml:"), message
    assert "expected" in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('name = "h1\\n"', "name"),
        ('name = "h1\\u001b[2J"', "name"),
        ('ssh = "root@h"\nidentity = "~/.ssh/id\\u0000"', "identity"),
        ('ssh = "root@h"\nknown_hosts = "kh\\n"', "known_hosts"),
        ('libvirt = "test:///default\\u0007"', "libvirt"),
        ('ssh = "root@h"\nroles = ["\\u001b[31mmaster"]', "roles"),
    ],
)
def test_control_characters_are_refused_and_never_echoed(line: str, key: str) -> None:
    text = f"[[pools]]\nname = 'a'\n[[pools.hosts]]\n{line}\n"
    if not line.startswith("name"):
        text = text.replace("[[pools.hosts]]\n", "[[pools.hosts]]\nname = 'h'\n")
    else:
        text += "ssh = 'root@h'\n"
    message = config_error(text)
    assert key in message, message
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in message), repr(message)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[pools]]\nname = "a\\n"\n[[pools.hosts]]\nname = "h"\nssh = "root@h"\n', "name"),
        (
            '[[pools]]\nname = "a"\nshared_storage = "/OVS\\n"\n[[pools.hosts]]\nname = "h"\n'
            'ssh = "root@h"\n',
            "shared_storage",
        ),
        ('repository = "r\\u0000"\n[[pools]]\nname = "a"\n', "repository"),
        ('"\\u001b[2J" = 1\n[[pools]]\nname = "a"\n', "unknown key"),
    ],
)
def test_control_characters_elsewhere_are_refused(text: str, key: str) -> None:
    message = config_error(text)
    assert key in message, message
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in message), repr(message)


def test_shared_storage_is_an_absolute_path() -> None:
    # It is put on the hosts' command line: "-rf" must not read as an option.
    text = (
        "[[pools]]\nname = 'a'\nshared_storage = '-rf'\n[[pools.hosts]]\nname='h'\nssh='root@h'\n"
    )
    message = config_error(text)
    assert message.startswith("estate.toml:3: pool 'a': shared_storage: "), message
    assert "absolute" in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("ssh = 'root@h'\nidentity = '/" + "x" * 4096 + "'", "identity"),
        ("ssh = 'root@h'\nknown_hosts = '/" + "x" * 4096 + "'", "known_hosts"),
        ("libvirt = 'test:///" + "x" * 4096 + "'", "libvirt"),
        ("ssh = 'root@" + "x" * 5000 + "'", "ssh"),
    ],
    ids=["identity", "known_hosts", "libvirt", "ssh"],
)
def test_long_values_are_refused_without_being_echoed(line: str, key: str) -> None:
    message = config_error(host_with(line))
    assert f"host 'h': {key}: " in message, message
    assert "at most" in message, message
    assert len(message) < 400, len(message)


def test_huge_name_is_refused_fast_and_small() -> None:
    text = f"[[pools]]\nname = '{'a' * 300_000}'\n[[pools.hosts]]\nname='h'\nssh='root@h'\n"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = config_error(text)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith("estate.toml:2: pools[0]: name"), message
    assert "at most 63" in message and len(message) < 400
    assert elapsed < 2.0, elapsed  # 10 s before the bounds (2 cores shared by others)
    assert peak < 16 * 1024 * 1024, peak


def test_text_over_one_mib_is_refused_before_parsing() -> None:
    text = GOOD + "# " + "x" * (1024 * 1024) + "\n"
    started = time.perf_counter()
    message = config_error(text)
    assert "larger than 1 MiB" in message, message
    assert time.perf_counter() - started < 1.0


def test_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "estate.toml"
    big.write_text(GOOD + "# " + "x" * (3 * 1024 * 1024) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(big))}: .*larger than 1 MiB"):
        load_estate(big)


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    body = GOOD + "#"
    padded = tmp_path / "estate.toml"
    padded.write_text(body + "x" * (1024 * 1024 - len(body) - 1) + "\n", encoding="utf-8")
    assert padded.stat().st_size == 1024 * 1024
    assert [h.name for h in load_estate(padded).hosts] == ["h1", "h2", "ovs7"]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    message = config_error("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested" in message, message


def test_toml_syntax_error_names_the_line() -> None:
    message = config_error("[[pools]]\nname = 'a'\nbroken = \n")
    assert message.startswith("estate.toml:3: not valid TOML: "), message


@pytest.mark.parametrize(
    "name", ["ovs01", "pool-a", "a_b", "h1.example.com", "root@x", "x:1", "A" * 63]
)
def test_names_accepted_today_are_still_accepted(name: str) -> None:
    estate = parse_estate(
        f"[[pools]]\nname = {json.dumps(name)}\n[[pools.hosts]]\nname = {json.dumps(name)}\n"
        "ssh = 'root@h'\n",
        "e",
    )
    assert estate.pools[0].name == name and estate.hosts[0].name == name


def test_line_numbers_count_only_newlines() -> None:
    # U+2028 may stand in a TOML comment; str.splitlines() would count it as a line break.
    text = "# a\u2028b\n" + host_with("ssh = 'root@h:99999'")
    message = config_error(text)
    assert message.startswith("estate.toml:6: "), message


def test_errors_in_inline_host_tables_point_at_the_bad_value() -> None:
    # No [[pools.hosts]] headers to go by: the line is found by the bad value itself.
    text = (
        "[[pools]]\nname = 'a'\nhosts = [\n"
        "  { name = 'h1', ssh = 'root@h1' },\n"
        "  { name = 'h2', ssh = 'root@h2:99999' },\n"
        "]\n"
    )
    message = config_error(text)
    assert message.startswith("estate.toml:5: pool 'a': host 'h2': ssh: port 99999"), message


def test_a_file_of_one_huge_value_is_refused_fast() -> None:
    # Within the size limit, but one line of a megabyte: locating the error must not crawl it.
    text = "x = '" + "a" * (1024 * 1024 - 16) + "'\n"
    started = time.perf_counter()
    message = config_error(text)
    assert message.startswith("estate.toml:1: unknown key 'x'"), message
    assert time.perf_counter() - started < 2.0


def test_max_waiting_is_read_and_checked() -> None:
    assert parse_estate(GOOD, "estate.toml", base_dir=None).max_waiting is None
    estate = parse_estate("max_waiting = 200\n" + GOOD, "estate.toml", base_dir=None)
    assert estate.max_waiting == 200
    for bad in ("0", "1025", "true", '"64"', "6.5"):
        with pytest.raises(ConfigError, match=r"estate.toml:1: max_waiting: expected a whole"):
            parse_estate(f"max_waiting = {bad}\n" + GOOD, "estate.toml", base_dir=None)


def test_the_migration_overhead_is_read_and_checked() -> None:
    assert parse_estate(GOOD, "estate.toml", base_dir=None).migration_overhead_mib is None
    estate = parse_estate("migration_overhead_mib = 1024\n" + GOOD, "estate.toml", base_dir=None)
    assert estate.migration_overhead_mib == 1024
    for bad in ("-1", "1048577", '"256"', "2.5"):
        with pytest.raises(ConfigError, match="migration_overhead_mib: expected a whole number"):
            parse_estate(f"migration_overhead_mib = {bad}\n" + GOOD, "estate.toml", base_dir=None)
