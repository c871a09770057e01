"""The estate file: which pools and hosts to watch and how to reach them.

Every mistake in the file is reported before the UI starts, naming the file, the key (and the
line where it can be found) and what was expected. Parsing is pure: ``parse_estate`` takes
text, so tests need no files.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovmtui.errors import ConfigError
from ovmtui.model import HostKey, HostRole

_HOST_KEYS = frozenset(
    {"name", "libvirt", "ssh", "identity", "known_hosts", "toolstack", "jump", "roles"}
)
_POOL_KEYS = frozenset({"name", "shared_storage", "hosts"})
_TOP_KEYS = frozenset({"pools", "repository", "max_waiting", "migration_overhead_mib"})
# How many hosts may be waited on at once (connects and commands in flight): see
# backend/pacing.py. Far estates of many hosts may want more; a jump host with a small
# connection-tracking table or an sshd MaxStartups limit in the way, fewer.
MAX_WAITING_RANGE = (1, 1024)
# Memory a migration's target must keep free beyond the guest's own (services/flight_plan).
MIGRATION_OVERHEAD_RANGE = (0, 1 << 20)

# Bounds checked before any other work on a value, so that refusing a huge file or value
# costs little: an estate of a thousand hosts is about a tenth of MAX_FILE_BYTES.
MAX_FILE_BYTES = 1024 * 1024
MAX_NAME = 63
MAX_TEXT = 4096  # URIs and paths: Linux's PATH_MAX
MAX_USER = 32  # what useradd accepts
MAX_HOST = 253  # RFC 1035, without the final dot
_SHOWN = 40  # characters of a bad value quoted back in an error
_MAX_NEEDLE = 256  # longer text is not searched for when locating an error

# Every pattern spells its ranges out in ASCII, and is used with fullmatch: Python's \d and
# \s also match full-width digits and Unicode spaces, and $ matches before a final newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,62}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")  # POSIX portable, no leading '-'
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # RFC 1123
_IPV4_LIKE = re.compile(r"[0-9.]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]{1,64})?")  # with a zone: %eth0
_DIGITS = re.compile(r"[0-9]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s")  # the one Unicode-wide pattern: any space is refused in a URI

_TARGET_FORM = "expected user@host[:port] (e.g. root@ovs7.example.com:22)"
_HOST_FORM = (
    "expected a DNS name (dot-separated labels of 1 to 63 letters, digits and '-', not "
    f"beginning or ending with '-'; {MAX_HOST} characters at most), an IPv4 address or an "
    "IPv6 address in brackets ([2001:db8::7]:22)"
)
_USER_FORM = (
    f"expected a user name of letters, digits, '.', '_' and '-' (at most {MAX_USER}, not "
    "beginning with '-')"
)

# Table headers, to tell which [[pools]] or [[pools.hosts]] table a line belongs to.
_POOL_HEADER = re.compile(r"[ \t]*\[\[[ \t]*pools[ \t]*\]\][ \t]*(?:#.*)?")
_HOST_HEADER = re.compile(r"[ \t]*\[\[[ \t]*pools[ \t]*\.[ \t]*hosts[ \t]*\]\][ \t]*(?:#.*)?")
_OTHER_HEADER = re.compile(
    r"[ \t]*\[\[?[ \t]*[A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+)*[ \t]*\]\]?[ \t]*(?:#.*)?"
)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True, slots=True)
class HostConfig:
    pool: str
    name: str
    libvirt: str | None = None  # a libvirt URI
    ssh: str | None = None  # user@host[:port], for Xen hosts (xm/xl over SSH)
    identity: str | None = None
    known_hosts: str | None = None
    toolstack: str = "auto"
    jump: str | None = None
    roles: tuple[HostRole, ...] = ()
    shared_storage: str | None = None  # the pool's, where Xen hosts keep running_pool/*/vm.cfg

    @property
    def key(self) -> HostKey:
        return HostKey(self.pool, self.name)

    @property
    def address(self) -> str:
        return self.libvirt or self.ssh or ""


@dataclass(frozen=True, slots=True)
class PoolConfig:
    name: str
    hosts: tuple[HostConfig, ...]
    shared_storage: str | None = None


@dataclass(frozen=True, slots=True)
class EstateConfig:
    pools: tuple[PoolConfig, ...]
    source: str  # the file it came from, or "demo estate"
    repository: Path | None = None
    max_waiting: int | None = None  # None: pacing.WAIT_SLOTS
    migration_overhead_mib: int | None = None  # None: flight_plan.DEFAULT_OVERHEAD_MIB

    @property
    def hosts(self) -> tuple[HostConfig, ...]:
        return tuple(host for pool in self.pools for host in pool.hosts)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "ovmtui" / "estate.toml"


def default_repository_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local" / "share"
    )
    return Path(base) / "ovmtui" / "repository.sqlite"


def load_estate(path: Path) -> EstateConfig:
    try:
        with path.open("rb") as file:
            # Never more than the limit and one byte: a wrong path (a disk image, /dev/zero)
            # is refused at once instead of being read whole.
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file. Write an estate file there (see README: 'The estate "
            "file'), pass --config PATH, or try --demo."
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_large(str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    # The universal newlines that reading in text mode used to give.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return parse_estate(text, str(path), base_dir=path.parent)


def parse_estate(text: str, source: str, base_dir: Path | None = None) -> EstateConfig:
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:
            raise ConfigError(f"{source}: not valid TOML: {message}") from None
        line, column = position.groups()
        raise ConfigError(
            f"{source}:{line}: not valid TOML: {message[: position.start()]} (column {column})"
        ) from None
    except RecursionError:
        # tomllib recurses once per level of [ or {: thousands of them exhaust the stack.
        raise ConfigError(
            f"{source}: not valid TOML for an estate: arrays or inline tables nested too "
            "deeply (an estate file needs two levels)"
        ) from None
    return _Parser(text, source, base_dir).estate(data)


def _too_large(source: str) -> ConfigError:
    return ConfigError(
        f"{source}: larger than 1 MiB, the most an estate file may be (a thousand hosts take "
        "a tenth of that): is it the right file?"
    )


def _show(value: str) -> str:
    """A bad value quoted back: escaped, so that it cannot drive the terminal it is printed
    on, and cut, so that a megabyte of it does not scroll the rest of the message away."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}… ({len(value)} characters)"


def _text_problem(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"{len(value)} characters long: expected at most {limit}"
    bad = _CONTROL.search(value)
    if bad is not None:
        return (
            f"control character U+{ord(bad.group()):04X} at character {bad.start() + 1}: "
            "expected printable text"
        )
    return None


def _port_problem(port: str) -> str | None:
    if not _DIGITS.fullmatch(port):
        return (
            f"{_TARGET_FORM}: the port {_show(port)} is not a number: expected ASCII digits "
            "0-9 (1 to 65535)"
        )
    if len(port) > 5 or not 0 < int(port) < 65536:
        shown = port if len(port) <= 10 else f"{port[:10]}… ({len(port)} digits)"
        return f"port {shown} is out of range: expected 1 to 65535"
    return None


def _host_problem(host: str) -> str | None:
    if not host:
        return "no host"
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or rest:
            return f"{_show(host)} is not an IPv6 address in brackets: expected [2001:db8::7]"
        if _IPV6.fullmatch(address):
            try:
                ipaddress.IPv6Address(address)
            except ValueError:
                pass
            else:
                return None
        return f"{_show(address)} is not an IPv6 address"
    name = host.removesuffix(".")  # a fully qualified "ovs7.example.com." is as good
    if len(name) > MAX_HOST:
        return f"host name of {len(name)} characters: expected at most {MAX_HOST}"
    if _IPV4_LIKE.fullmatch(name):
        # Only digits and dots can be nothing but an address: 999.1.1.1 is no host name.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return f"{_show(host)} is not an IPv4 address: expected four numbers 0-255 (10.0.0.2)"
        return None
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return f"host {_show(host)} is not a host name: {_HOST_FORM}"
    return None


def _target_problem(target: str) -> str | None:
    """What is wrong with ``user@host[:port]`` (the authority of a URI too), if anything.

    The host and the user end up on ssh's command line and in shell commands on the way
    (libvirt's ssh transport): only what a name can hold is let through, so '-oProxyCommand=…'
    or 'h;id' is refused here rather than interpreted there.
    """
    user, at, rest = target.rpartition("@")
    if at:
        if not user:
            return f"{_TARGET_FORM}: nothing before '@'"
        if not _USER.fullmatch(user):
            return f"{_TARGET_FORM}: user {_show(user)}: {_USER_FORM}"
    if rest.startswith("["):
        close = rest.find("]")
        host, port = (rest, None) if close < 0 else (rest[: close + 1], rest[close + 1 :])
        if port is not None and port and not port.startswith(":"):
            return f"{_TARGET_FORM}: {_show(port)} after the IPv6 address: expected :port"
        port = port[1:] if port else None
    else:
        host, colon, after = rest.partition(":")
        if ":" in after:
            return f"{_TARGET_FORM}: an IPv6 address goes in brackets: user@[2001:db8::7]:22"
        port = after if colon else None
    problem = _host_problem(host)
    if problem is not None:
        return f"{_TARGET_FORM}: {problem}"
    return None if port is None else _port_problem(port)


@dataclass(frozen=True, slots=True)
class _Span:
    """The lines of one table: its header and what follows up to the next header."""

    first: int
    last: int


class _Layout:
    """Where each [[pools]] and [[pools.hosts]] table starts and ends.

    tomllib keeps no positions, so an error is located by searching for its key in the lines
    of its own table: an error in the third host points at the third host, not at the first
    line of the file that happens to mention the same key. A file written otherwise (inline
    tables, a header inside a multi-line string) makes the counts disagree with what tomllib
    read, and the search falls back to the whole file.
    """

    def __init__(self, lines: list[str]) -> None:
        self.pools: list[tuple[int, list[int]]] = []  # header line, its hosts' header lines
        self.orphans = False  # a [[pools.hosts]] before any [[pools]]
        headers: list[int] = []
        for number, line in enumerate(lines, start=1):
            if not line.lstrip().startswith("["):
                continue
            if _HOST_HEADER.fullmatch(line):
                if self.pools:
                    self.pools[-1][1].append(number)
                else:
                    self.orphans = True
                headers.append(number)
            elif _POOL_HEADER.fullmatch(line):
                self.pools.append((number, []))
                headers.append(number)
            elif _OTHER_HEADER.fullmatch(line):
                headers.append(number)
        self._ends = {
            start: (headers[i + 1] - 1 if i + 1 < len(headers) else len(lines))
            for i, start in enumerate(headers)
        }

    def span(self, header: int) -> _Span:
        return _Span(header, self._ends[header])


class _Parser:
    def __init__(self, text: str, source: str, base_dir: Path | None) -> None:
        # TOML counts "\n" only; str.splitlines() would also break at U+2028, \x0c and more,
        # which a comment may hold, and every line number after one would be off.
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        self.source = source
        self.base_dir = base_dir
        self.layout = _Layout(self.lines)
        self.pool_count = -1  # set once tomllib's count is known, to check the layout's
        self.host_counts: dict[int, int] = {}

    def fail(
        self,
        where: str,
        what: str,
        *,
        near: str | None = None,
        key: str | None = None,
        span: _Span | None = None,
    ) -> ConfigError:
        line = self.line_of(near=near, key=key, span=span)
        at = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{at}: {where}: {what}")

    def line_of(
        self, *, near: str | None = None, key: str | None = None, span: _Span | None = None
    ) -> int | None:
        """Best effort: the line of ``span`` that assigns ``key`` (or mentions it, or
        ``near``), else the span's header line. Without a span, the first line of the file
        that mentions ``near`` (the bad value itself), else that assigns or mentions ``key``.
        """
        assigns = mentions_key = mentions_near = None
        if key is not None and _searchable(key):
            quoted = re.escape(key)
            assigns = re.compile(rf"^\s*(?:{quoted}|\"{quoted}\"|'{quoted}')\s*=")
            mentions_key = _mention(key)
        if near is not None and _searchable(near):
            mentions_near = _mention(near)
        if span is None:
            # A key's name is in every host of the file; the bad value, in one place.
            first, last = 1, len(self.lines)
            order = (mentions_near, assigns, mentions_key)
        else:
            first, last = span.first, span.last
            order = (assigns, mentions_key, mentions_near)
        for pattern in order:
            if pattern is None:
                continue
            for number in range(first, last + 1):
                if pattern.search(self.lines[number - 1].split("#", 1)[0]):
                    return number
        return span.first if span else None

    def pool_span(self, index: int) -> _Span | None:
        pools = self.layout.pools
        if self.layout.orphans or len(pools) != self.pool_count or index >= len(pools):
            return None
        return self.layout.span(pools[index][0])

    def host_span(self, pool: int, index: int) -> _Span | None:
        if self.pool_span(pool) is None:
            return None
        hosts = self.layout.pools[pool][1]
        if len(hosts) != self.host_counts.get(pool) or index >= len(hosts):
            return None
        return self.layout.span(hosts[index])

    def estate(self, data: dict[str, Any]) -> EstateConfig:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.fail(
                    f"unknown key {_show(key)}",
                    "expected 'pools', 'repository', 'max_waiting' or 'migration_overhead_mib'",
                    key=key,
                )
        pools_raw = data.get("pools")
        if not isinstance(pools_raw, list) or not pools_raw:
            raise self.fail("pools", "expected at least one [[pools]] table")
        self.pool_count = len(pools_raw)
        for index, raw in enumerate(pools_raw):
            hosts = raw.get("hosts") if isinstance(raw, dict) else None
            self.host_counts[index] = len(hosts) if isinstance(hosts, list) else 0
        repository = data.get("repository")
        repo_path: Path | None = None
        if repository is not None:
            repository = self._string(
                "repository", "repository", repository, MAX_TEXT, None, "a file path"
            )
            repo_path = Path(repository).expanduser()
            if not repo_path.is_absolute() and self.base_dir is not None:
                repo_path = self.base_dir / repo_path
        max_waiting = data.get("max_waiting")
        low, high = MAX_WAITING_RANGE
        if max_waiting is not None and (
            type(max_waiting) is not int or not low <= max_waiting <= high
        ):
            raise self.fail(
                "max_waiting",
                f"expected a whole number of hosts from {low} to {high}",
                key="max_waiting",
            )
        overhead = data.get("migration_overhead_mib")
        low, high = MIGRATION_OVERHEAD_RANGE
        if overhead is not None and (type(overhead) is not int or not low <= overhead <= high):
            raise self.fail(
                "migration_overhead_mib",
                f"expected a whole number of MiB from {low} to {high}",
                key="migration_overhead_mib",
            )
        pools = tuple(self.pool(index, raw) for index, raw in enumerate(pools_raw))
        self._check_unique(pools)
        return EstateConfig(pools, self.source, repo_path, max_waiting, overhead)

    def pool(self, index: int, raw: object) -> PoolConfig:
        where = f"pools[{index}]"
        span = self.pool_span(index)
        raw = self._table(where, raw, "[[pools]]", _POOL_KEYS, span)
        name = self._name(where, raw.get("name"), span)
        where = f"pool '{name}'"
        storage = raw.get("shared_storage")
        if storage is not None:
            storage = self._string(where, "shared_storage", storage, MAX_TEXT, span, "a path")
            if not storage.startswith("/"):
                # It is put on the hosts' command lines: a relative path would depend on the
                # login's directory, and "-x" would read as an option.
                raise self.fail(
                    f"{where}: shared_storage",
                    f"{_show(storage)} is not an absolute path: expected the path on the "
                    "hosts where running_pool is, e.g. /OVS",
                    key="shared_storage",
                    span=span,
                )
        # A pool may have no host yet: one being built (`ovmtui pool add`, then its hosts).
        hosts_raw = raw.get("hosts", [])
        if not isinstance(hosts_raw, list):
            raise self.fail(where, "expected [[pools.hosts]] tables", key="hosts", span=span)
        hosts = tuple(
            dataclasses.replace(self.host(name, index, i, h), shared_storage=storage)
            for i, h in enumerate(hosts_raw)
        )
        return PoolConfig(name, hosts, storage)

    def host(self, pool: str, pool_index: int, index: int, raw: object) -> HostConfig:
        where = f"pool '{pool}': hosts[{index}]"
        span = self.host_span(pool_index, index)
        raw = self._table(where, raw, "[[pools.hosts]]", _HOST_KEYS, span)
        name = self._name(where, raw.get("name"), span)
        where = f"pool '{pool}': host '{name}'"
        strings: dict[str, str | None] = {}
        for key in ("libvirt", "ssh", "identity", "known_hosts", "jump", "toolstack"):
            value = raw.get(key)
            limit = MAX_NAME if key == "toolstack" else MAX_TEXT
            strings[key] = None if value is None else self._string(where, key, value, limit, span)
        if strings["libvirt"] is None and strings["ssh"] is None:
            raise self.fail(
                where,
                'no connection: expected libvirt = "URI" (e.g. qemu+ssh://root@h1/system) '
                'or ssh = "user@host[:port]"',
                key="name",
                span=span,
            )
        if strings["libvirt"] is not None and strings["ssh"] is not None:
            raise self.fail(where, "expected either libvirt or ssh, not both", key="ssh", span=span)
        for key in ("ssh", "jump"):
            value = strings[key]
            problem = None if value is None else _target_problem(value)
            if problem is not None:
                raise self.fail(f"{where}: {key}", problem, key=key, near=value, span=span)
        uri = strings["libvirt"]
        problem = None if uri is None else _uri_problem(uri)
        if problem is not None:
            raise self.fail(f"{where}: libvirt", problem, key="libvirt", near=uri, span=span)
        toolstack = strings["toolstack"] or "auto"
        if toolstack not in ("auto", "xm", "xl"):
            raise self.fail(
                f"{where}: toolstack", "expected auto, xm or xl", key="toolstack", span=span
            )
        roles = self._roles(where, raw.get("roles"), span)
        return HostConfig(
            pool=pool,
            name=name,
            libvirt=strings["libvirt"],
            ssh=strings["ssh"],
            identity=strings["identity"],
            known_hosts=strings["known_hosts"],
            toolstack=toolstack,
            jump=strings["jump"],
            roles=roles,
        )

    def _table(
        self, where: str, raw: object, kind: str, known: frozenset[str], span: _Span | None
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a {kind} table", span=span)
        for key in raw:
            if key not in known:
                raise self.fail(
                    f"{where}: unknown key {_show(key)}",
                    "expected one of " + ", ".join(sorted(known)),
                    key=key,
                    span=span,
                )
        return raw

    def _string(
        self,
        where: str,
        key: str,
        value: object,
        limit: int,
        span: _Span | None,
        expected: str = "a non-empty string",
    ) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}: {key}", f"expected {expected}", key=key, span=span)
        problem = _text_problem(value, limit)
        if problem is not None:
            raise self.fail(f"{where}: {key}", problem, key=key, near=value, span=span)
        return value

    def _name(self, where: str, value: object, span: _Span | None) -> str:
        expected = (
            f"expected a name of letters, digits and . _ - @ : (at most {MAX_NAME}, "
            "beginning with a letter or a digit)"
        )
        if value is None:
            raise self.fail(f"{where}: name", f"missing; {expected}", span=span)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}: name", expected, key="name", span=span)
        if len(value) > MAX_NAME:
            # Checked first: a name of megabytes is refused before any pattern reads it.
            raise self.fail(
                f"{where}: name",
                f"{expected}; this one has {len(value)} characters",
                key="name",
                span=span,
            )
        if not _NAME.fullmatch(value):
            raise self.fail(
                f"{where}: name",
                f"{expected}, not {_show(value)}",
                key="name",
                near=value,
                span=span,
            )
        return value

    def _roles(self, where: str, value: object, span: _Span | None) -> tuple[HostRole, ...]:
        if value is None:
            return ()
        valid = ", ".join(role.value for role in HostRole)
        if not isinstance(value, list):
            raise self.fail(
                f"{where}: roles", f"expected a list of: {valid}", key="roles", span=span
            )
        roles: list[HostRole] = []
        for item in value:
            try:
                role = HostRole(item)
            except ValueError:
                shown = _show(item) if isinstance(item, str) else f"of type {type(item).__name__}"
                raise self.fail(
                    f"{where}: roles",
                    f"unknown role {shown}, expected: {valid}",
                    key="roles",
                    span=span,
                ) from None
            if role not in roles:
                roles.append(role)
        return tuple(roles)

    def _name_line(self, pool: int, host: int | None = None) -> int | None:
        span = self.pool_span(pool) if host is None else self.host_span(pool, host)
        return self.line_of(key="name", span=span) if span else None

    def _check_unique(self, pools: tuple[PoolConfig, ...]) -> None:
        seen_pools: dict[str, int] = {}
        seen_hosts: dict[str, tuple[int, int]] = {}
        for p, pool in enumerate(pools):
            if pool.name in seen_pools:
                first = self._name_line(seen_pools[pool.name])
                raise self.fail(
                    f"pool '{pool.name}'",
                    "duplicate pool name"
                    + (f" (the first '{pool.name}' is on line {first})" if first else "")
                    + "; pool names must be unique",
                    key="name",
                    near=pool.name,
                    span=self.pool_span(p),
                )
            seen_pools[pool.name] = p
            masters = [i for i, h in enumerate(pool.hosts) if HostRole.MASTER in h.roles]
            if len(masters) > 1:
                names = ", ".join(pool.hosts[i].name for i in masters)
                raise self.fail(
                    f"pool '{pool.name}'",
                    f"more than one master ({names}); a pool has one",
                    key="roles",
                    near=pool.hosts[masters[1]].name,
                    span=self.host_span(p, masters[1]),
                )
            for h, host in enumerate(pool.hosts):
                # Host names are unique across the estate: a VM's host must be unambiguous
                # in the journal and in every command an operator types.
                if host.name in seen_hosts:
                    first_pool, first_host = seen_hosts[host.name]
                    first = self._name_line(first_pool, first_host)
                    raise self.fail(
                        f"pool '{pool.name}': host '{host.name}'",
                        f"duplicate host name (already in pool '{pools[first_pool].name}')"
                        + (f": the first '{host.name}' is on line {first}" if first else "")
                        + "; host names must be unique across the estate",
                        key="name",
                        near=host.name,
                        span=self.host_span(p, h),
                    )
                seen_hosts[host.name] = (p, h)


def _mention(needle: str) -> re.Pattern[str]:
    return re.compile(rf"(^|[\s\"'{{,]){re.escape(needle)}($|[\s\"'=}},])")


def _searchable(needle: str) -> bool:
    return bool(needle) and len(needle) <= _MAX_NEEDLE and not _CONTROL.search(needle)


def _uri_problem(uri: str) -> str | None:
    """A libvirt URI: its scheme, and the user, host and port that libvirt hands to ssh."""
    expected = "expected a libvirt URI (e.g. qemu+ssh://root@h1/system or test:///default)"
    space = _SPACE.search(uri)
    if space is not None:
        return (
            f"{expected}; a space at character {space.start() + 1}: libvirt refuses it, write "
            "it %20"
        )
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return f"{expected}, not {_show(uri)}"
    if not rest.startswith("//"):
        return None
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if not authority:
        return None  # a local driver: test:///…, qemu:///system
    problem = _target_problem(authority)
    if problem is None:
        return None
    return problem.replace(_TARGET_FORM, "in the URI's user@host[:port]", 1)
