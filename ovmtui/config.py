"""The estate file: which pools and hosts to watch and how to reach them.

Every mistake in the file is reported before the UI starts, naming the file, the key (and the
line where it can be found) and what was expected. Parsing is pure: ``parse_estate`` takes
text, so tests need no files.
"""

from __future__ import annotations

import dataclasses
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
_TOP_KEYS = frozenset({"pools", "repository"})
_SSH_TARGET = re.compile(r"(?:[^@\s]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^@:\s\[\]]+)(?::\d{1,5})?")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,62}$")


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file. Write an estate file there (see README: 'The estate "
            "file'), pass --config PATH, or try --demo."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    return parse_estate(text, str(path), base_dir=path.parent)


def parse_estate(text: str, source: str, base_dir: Path | None = None) -> EstateConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _Parser(text, source, base_dir).estate(data)


class _Parser:
    def __init__(self, text: str, source: str, base_dir: Path | None) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.base_dir = base_dir

    def fail(self, where: str, what: str, *, near: str | None = None) -> ConfigError:
        line = self._line_of(near) if near else None
        at = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{at}: {where}: {what}")

    def _line_of(self, needle: str) -> int | None:
        """Best effort: tomllib keeps no positions, so find the first line that mentions it."""
        pattern = re.compile(rf"(^|[\s\"'{{,]){re.escape(needle)}($|[\s\"'=}},])")
        for number, line in enumerate(self.lines, start=1):
            if pattern.search(line.split("#", 1)[0]):
                return number
        return None

    def estate(self, data: dict[str, Any]) -> EstateConfig:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.fail(
                    f"unknown key '{key}'", "expected 'pools' or 'repository'", near=key
                )
        pools_raw = data.get("pools")
        if not isinstance(pools_raw, list) or not pools_raw:
            raise self.fail("pools", "expected at least one [[pools]] table")
        repository = data.get("repository")
        repo_path: Path | None = None
        if repository is not None:
            if not isinstance(repository, str) or not repository:
                raise self.fail("repository", "expected a file path", near="repository")
            repo_path = Path(repository).expanduser()
            if not repo_path.is_absolute() and self.base_dir is not None:
                repo_path = self.base_dir / repo_path
        pools = tuple(self.pool(index, raw) for index, raw in enumerate(pools_raw))
        self._check_unique(pools)
        return EstateConfig(pools, self.source, repo_path)

    def pool(self, index: int, raw: object) -> PoolConfig:
        where = f"pools[{index}]"
        raw = self._table(where, raw, "[[pools]]", _POOL_KEYS)
        name = self._name(where, raw.get("name"))
        where = f"pool '{name}'"
        storage = raw.get("shared_storage")
        if storage is not None and (not isinstance(storage, str) or not storage):
            raise self.fail(f"{where}: shared_storage", "expected a path", near="shared_storage")
        hosts_raw = raw.get("hosts")
        if not isinstance(hosts_raw, list) or not hosts_raw:
            raise self.fail(where, "expected at least one [[pools.hosts]] table", near=name)
        hosts = tuple(
            dataclasses.replace(self.host(name, i, h), shared_storage=storage)
            for i, h in enumerate(hosts_raw)
        )
        return PoolConfig(name, hosts, storage)

    def host(self, pool: str, index: int, raw: object) -> HostConfig:
        where = f"pool '{pool}': hosts[{index}]"
        raw = self._table(where, raw, "[[pools.hosts]]", _HOST_KEYS)
        name = self._name(where, raw.get("name"))
        where = f"pool '{pool}': host '{name}'"
        strings = {}
        for key in ("libvirt", "ssh", "identity", "known_hosts", "jump", "toolstack"):
            value = raw.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise self.fail(f"{where}: {key}", "expected a non-empty string", near=key)
            strings[key] = value
        if strings["libvirt"] is None and strings["ssh"] is None:
            raise self.fail(
                where,
                'no connection: expected libvirt = "URI" (e.g. qemu+ssh://root@h1/system) '
                'or ssh = "user@host[:port]"',
                near=name,
            )
        if strings["libvirt"] is not None and strings["ssh"] is not None:
            raise self.fail(where, "expected either libvirt or ssh, not both", near="ssh")
        for key in ("ssh", "jump"):
            value = strings[key]
            if value is not None and not _SSH_TARGET.fullmatch(value):
                raise self.fail(
                    f"{where}: {key}", "expected user@host[:port] (e.g. root@ovs7:22)", near=key
                )
        toolstack = strings["toolstack"] or "auto"
        if toolstack not in ("auto", "xm", "xl"):
            raise self.fail(f"{where}: toolstack", "expected auto, xm or xl", near="toolstack")
        roles = self._roles(where, raw.get("roles"))
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

    def _table(self, where: str, raw: object, kind: str, known: frozenset[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a {kind} table")
        for key in raw:
            if key not in known:
                raise self.fail(
                    f"{where}: unknown key '{key}'",
                    "expected one of " + ", ".join(sorted(known)),
                    near=key,
                )
        return raw

    def _name(self, where: str, value: object) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(
                f"{where}: name",
                "expected a name of letters, digits and . _ - @ : (at most 63)",
                near=value if isinstance(value, str) and value else None,
            )
        return value

    def _roles(self, where: str, value: object) -> tuple[HostRole, ...]:
        if value is None:
            return ()
        valid = ", ".join(role.value for role in HostRole)
        if not isinstance(value, list):
            raise self.fail(f"{where}: roles", f"expected a list of: {valid}", near="roles")
        roles: list[HostRole] = []
        for item in value:
            try:
                role = HostRole(item)
            except ValueError:
                raise self.fail(
                    f"{where}: roles", f"unknown role {item!r}, expected: {valid}", near="roles"
                ) from None
            if role not in roles:
                roles.append(role)
        return tuple(roles)

    def _check_unique(self, pools: tuple[PoolConfig, ...]) -> None:
        seen_pools: set[str] = set()
        seen_hosts: dict[str, str] = {}
        for pool in pools:
            if pool.name in seen_pools:
                raise self.fail(f"pool '{pool.name}'", "duplicate pool name", near=pool.name)
            seen_pools.add(pool.name)
            masters = [h.name for h in pool.hosts if HostRole.MASTER in h.roles]
            if len(masters) > 1:
                raise self.fail(
                    f"pool '{pool.name}'",
                    f"more than one master ({', '.join(masters)}); a pool has one",
                    near=masters[1],
                )
            for host in pool.hosts:
                # Host names are unique across the estate: a VM's host must be unambiguous
                # in the journal and in every command an operator types.
                if host.name in seen_hosts:
                    raise self.fail(
                        f"host '{host.name}'",
                        f"duplicate host name (already in pool '{seen_hosts[host.name]}')",
                        near=host.name,
                    )
                seen_hosts[host.name] = pool.name
