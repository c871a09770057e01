"""A real OpenSSH ``sshd`` on loopback whose sessions run fake ``xm``/``xl`` programs.

Each :class:`FakeXenHost` is one TCP port on 127.0.0.1. Whoever runs the tests logs in
as themselves (``getpass.getuser()``) with a generated ed25519 key; the host key is
pinned in a generated ``known_hosts`` so clients connect with verification on.

How a session finds "its" host: every port has a ``Match LocalPort`` block whose
``SetEnv`` gives the commands ``PATH=<host bin>:/usr/bin:/bin`` (the host's bin dir
holds ``xm``, ``xl`` or both, so ``command -v xl`` tells the toolstacks apart) and
``XENFAKE_STATE=<host state dir>``. ``SHLVL=1`` is set too: Debian's bash sources
``~/.bashrc`` for commands run by sshd only at shell level 1, and a developer's
``.bashrc`` (pyenv init, cargo env...) would both prepend to PATH and cost ~300 ms a
command. With SHLVL=1 inherited, bash is at level 2 and reads no rc file.

One sshd can listen on at most 16 sockets (OpenSSH's MAX_LISTEN_SOCKS), so many hosts
are spread over ``ceil(hosts / ports_per_sshd)`` sshd processes. The default of one
host per sshd makes :meth:`FakeXenHost.stop` freeze the host completely, listener
included, so even new connections get no banner.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from . import xenstate

SSHD = "/usr/sbin/sshd"
MAX_LISTEN_SOCKS = 16  # OpenSSH sshd.c; more ListenAddress lines make sshd exit
_HERE = Path(__file__).resolve().parent
_FAKE_BIN = _HERE / "bin"
_HELPER = _HERE / "xenstate.py"
_CONSOLE = _HERE / "xenconsole.py"
_MIGRATE = _HERE / "xenmigrate.py"
# The boot log the fake guests replay on their console: a real one, recorded on the lab.
_BOOT_LOGS = (_HERE.parent / "data" / "console" / "linux-boot.log",)
_TOOLS = ("xm", "xl")
# A command that runs until its input ends or a signal ends it, on every host's PATH
# whatever its toolstack: what long-lived channels run in the tests (see bin/longrun).
_LONGRUN = "longrun"
# Answers `env test -e PATH` / `-d /sys/class/net/BR/bridge` from the fake host's state.
_TEST = "test"
# Logs its argv, then runs the real find: the storage listing's argv is checked exactly.
_FIND = "find"
# `service` (ovs-agent status) and `date` (a skewed clock): on every host, like `test`.
_HOST_TOOLS = ("service", "date")
LONGRUN_LOG = "longrun.log"
# Characters that would need quoting in sshd_config or in the fakes' sh scripts.
_UNSAFE_PATH_CHARS = frozenset(" \t\n\"'\\$`;&|<>*?[]{}()#~")

# The fakes run the helper through this runner so Python loads a cached .pyc instead of
# compiling xenstate.py on every mutating command (a __main__ script is never cached).
_RUNNER = """\
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
import xenstate
sys.exit(xenstate.main(sys.argv))
"""


@dataclass
class HostSpec:
    """What a fake host looks like. ``domains`` None means ``generate_domains``."""

    name: str
    toolstack: str = "both"
    domains: list[dict[str, Any]] | None = None
    info: dict[str, Any] | None = None
    shutdown_delay: float = 0.0
    cpu_steps: int = 0  # > 0: running domains' CPU time moves (xenstate.render_cpu_steps)
    # Where its sshd listens: any 127.x.y.z is this machine. Hosts that migrate to each
    # other need addresses of their own (`xm migrate DOM ADDRESS` must name one host).
    address: str = "127.0.0.1"
    paths: tuple[str, ...] = ()  # what `test -e` finds besides its own domains' disks
    bridges: tuple[str, ...] = xenstate.DEFAULT_BRIDGES


@dataclass(eq=False)
class FakeXenHost:
    """One fake Xen dom0 reachable at ``127.0.0.1:port``."""

    name: str
    port: int
    state_dir: Path
    toolstack: str
    server: SshdServer = field(repr=False)
    address: str = "127.0.0.1"
    _frozen: set[int] = field(default_factory=set, init=False, repr=False)

    # --- how to reach it

    @property
    def username(self) -> str:
        return self.server.username

    @property
    def ssh_target(self) -> str:
        return f"{self.username}@{self.address}:{self.port}"

    @property
    def known_hosts(self) -> Path:
        return self.server.known_hosts

    @property
    def wrong_known_hosts(self) -> Path:
        return self.server.wrong_known_hosts

    @property
    def client_key(self) -> Path:
        return self.server.client_key

    @property
    def wrong_client_key(self) -> Path:
        return self.server.wrong_client_key

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Arguments for ``asyncssh.connect(**...)``: host key verified, only our key.

        ``agent_path=None`` keeps a developer's ssh-agent keys out of the key tests.
        """
        kwargs: dict[str, Any] = {
            "host": self.address,
            "port": self.port,
            "username": self.username,
            "known_hosts": str(self.known_hosts),
            "client_keys": [str(self.client_key)],
            "agent_path": None,
        }
        kwargs.update(overrides)
        return kwargs

    def ssh_argv(self, command: str) -> list[str]:
        """An OpenSSH client command line running ``command`` (exec request, no PTY)."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-i",
            str(self.client_key),
            "-p",
            str(self.port),
            f"{self.username}@{self.address}",
            command,
        ]

    # --- what it did and what it holds

    def argv_log(self) -> list[list[str]]:
        """Every argv the fakes received, in order, exactly (``["xm", "list", "-l"]``)."""
        return xenstate.read_argv_log(self.state_dir)

    def clear_argv_log(self) -> None:
        (self.state_dir / xenstate.ARGV_LOG).unlink(missing_ok=True)

    def longrun_log(self) -> list[tuple[int, str]]:
        """What each ``longrun`` did, in order: ``(pid, "start" | "eof" | "hup" | "term" |
        "exit N")``."""
        path = self.state_dir / LONGRUN_LOG
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            pid, _, what = line.partition(" ")
            entries.append((int(pid), what))
        return entries

    def console_log(self) -> list[tuple[int, str]]:
        """What each ``xm/xl console`` did, in order: ``(pid, "attach NAME DOMID" |
        "refused IDENT" | "escape" | "eof" | "hup" | "term" | "gone")``."""
        path = self.state_dir / xenstate.CONSOLE_LOG
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            pid, _, what = line.partition(" ")
            entries.append((int(pid), what))
        return entries

    def boot_log(self) -> bytes:
        """The boot log this host's guests replay on their consoles, as they print it."""
        return (self.server.root / "helper" / "boot.log").read_bytes()

    def state(self) -> dict[str, Any]:
        return xenstate.update_state(self.state_dir)

    def domains(self) -> list[dict[str, Any]]:
        """Current domains (Domain-0 excluded), timed transitions settled."""
        domains: list[dict[str, Any]] = self.state()["domains"]
        return domains

    def domain(self, name: str) -> dict[str, Any]:
        for dom in self.domains():
            if dom["name"] == name:
                return dom
        raise KeyError(name)

    def update(self, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        """Change the state in place under the host's lock; outputs are re-rendered."""
        return xenstate.update_state(self.state_dir, change)

    def set_domains(self, domains: Sequence[dict[str, Any]]) -> None:
        def replace(state: dict[str, Any]) -> None:
            state["domains"] = [dict(d) for d in domains]
            domids = [d["domid"] for d in domains if d["domid"] is not None]
            state["next_domid"] = max([state["next_domid"], *(i + 1 for i in domids)])

        self.update(replace)

    def set_migrate_delay(self, seconds: float) -> None:
        """``xm/xl migrate`` from this host then takes ``seconds`` (0.3 if never set)."""
        self.update(lambda state: state.__setitem__("migrate_delay", float(seconds)))

    def set_paths(self, paths: Sequence[str]) -> None:
        """What ``test -e`` finds on this host besides its own domains' disks."""
        self.update(lambda state: state.__setitem__("paths", list(paths)))

    def set_bridges(self, bridges: Sequence[str]) -> None:
        """The bridges ``test -d /sys/class/net/BR/bridge`` finds on this host."""
        self.update(lambda state: state.__setitem__("bridges", list(bridges)))

    def migrate_log(self) -> list[tuple[int, str]]:
        """What each ``xm/xl migrate`` from this host did, in order: ``(pid, "start DOM
        HOST" | "moved TARGET DOMID" | "failed WHY")``."""
        path = self.state_dir / "migrate.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            pid, _, what = line.partition(" ")
            entries.append((int(pid), what))
        return entries

    def set_shutdown_delay(self, seconds: float) -> None:
        """``xm shutdown`` then shows ``---s--`` for ``seconds`` before the domain is off."""
        self.update(lambda state: state.__setitem__("shutdown_delay", float(seconds)))

    def set_service(self, name: str, state: str | None) -> None:
        """What ``service NAME status`` says: "running" (exit 0), "stopped" (exit 3), or
        None: an unknown service ("NAME: unrecognized service", exit 1)."""
        directory = self.state_dir / "services"
        directory.mkdir(exist_ok=True)
        path = directory / name
        if state is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(state + "\n", encoding="utf-8")

    def set_clock_skew(self, seconds: float) -> None:
        """``date +%s.%N`` on this host then reads this machine's clock plus ``seconds``."""
        (self.state_dir / "clock_skew").write_text(f"{seconds}\n", encoding="utf-8")

    # --- faults

    def set_fault(self, kind: str | None) -> None:
        """None, "hang" (commands never answer), "malformed" (garbage output) or "error"
        (an ``Error:`` line and usage text, exit 1). Sticky until set to None."""
        path = self.state_dir / xenstate.FAULT_FILE
        if kind is None:
            path.unlink(missing_ok=True)
            return
        if kind not in xenstate.FAULTS:
            raise ValueError(f"fault must be None or one of {xenstate.FAULTS}, not {kind!r}")
        path.write_text(kind + "\n", encoding="utf-8")

    def stop(self) -> None:
        """SIGSTOP what serves this host: TCP stays up, nothing answers, like a dom0 that
        froze mid-poll. With its own sshd (ports_per_sshd=1) new connections hang before
        the banner too; on a shared sshd only its established connections freeze."""
        self._frozen |= self.server._freeze(self)

    def cont(self) -> None:
        """Undo :meth:`stop`."""
        pids = self._frozen | self.server._host_pids(self)
        _signal_all(pids, signal.SIGCONT)
        self._frozen = set()

    @property
    def stopped(self) -> bool:
        return bool(self._frozen)


@dataclass
class _Sshd:
    index: int
    hosts: list[FakeXenHost]
    config: Path
    log: Path
    pid_file: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


class SshdServer:
    """Fake Xen hosts served by real sshd processes. Use :meth:`start`, then
    :meth:`close` (or ``with``); teardown leaves no process and no file behind."""

    def __init__(
        self,
        specs: Sequence[HostSpec],
        *,
        ports_per_sshd: int = 1,
        base_dir: Path | None = None,
        sshd_options: Sequence[str] = (),
    ) -> None:
        if not 1 <= ports_per_sshd <= MAX_LISTEN_SOCKS:
            raise ValueError(f"ports_per_sshd must be 1..{MAX_LISTEN_SOCKS} (sshd's limit)")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("host names must be unique")
        for name in names:
            if not name or not all(c.isalnum() or c in "._-" for c in name):
                raise ValueError(f"host name {name!r}: use letters, digits, '.', '_', '-'")
        self.specs = list(specs)
        self.ports_per_sshd = ports_per_sshd
        self.sshd_options = list(sshd_options)  # extra sshd_config lines, before any Match
        self.username = getpass.getuser()
        self.root = Path(tempfile.mkdtemp(prefix="sshfake-", dir=base_dir)).resolve()
        self.hosts: list[FakeXenHost] = []
        self._sshds: list[_Sshd] = []
        # Runs at interpreter exit too, so even an abandoned server is torn down.
        self._finalizer = weakref.finalize(self, _teardown, self._sshds, self.root)
        for path in (self.root, Path(sys.executable)):
            if _UNSAFE_PATH_CHARS & set(str(path)):
                self.close()
                raise ValueError(f"{path}: path must not contain spaces or shell characters")

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def known_hosts(self) -> Path:
        """``[127.0.0.1]:PORT ssh-ed25519 ...`` for every host, the real host key."""
        return self.root / "known_hosts"

    @property
    def wrong_known_hosts(self) -> Path:
        """Same host:port entries with another host key: verification must fail."""
        return self.root / "wrong_known_hosts"

    @property
    def client_key(self) -> Path:
        return self.keys_dir / "client_ed25519"

    @property
    def wrong_client_key(self) -> Path:
        """A valid key that is not in authorized_keys: authentication must fail."""
        return self.keys_dir / "wrong_client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.keys_dir / "host_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @classmethod
    def start(
        cls,
        hosts: int | Sequence[str | HostSpec] = 1,
        *,
        domains_per_host: int = 6,
        seed: int = 0,
        toolstack: str = "both",
        ports_per_sshd: int = 1,
        base_dir: Path | None = None,
        timeout: float = 10.0,
        sshd_options: Sequence[str] = (),
        cpu_steps: int = 0,
    ) -> SshdServer:
        """Start sshd(s) for ``hosts`` (a count, names or :class:`HostSpec`), each host
        with ``generate_domains(domains_per_host, seed=f"{seed}/{name}")`` unless given."""
        if isinstance(hosts, int):
            width = max(2, len(str(hosts)))
            hosts = [f"xen{i:0{width}d}" for i in range(1, hosts + 1)]
        specs = []
        for h in hosts:
            spec = (
                h
                if isinstance(h, HostSpec)
                else HostSpec(h, toolstack=toolstack, cpu_steps=cpu_steps)
            )
            if spec.domains is None:
                domains = xenstate.generate_domains(domains_per_host, f"{seed}/{spec.name}")
                spec = dataclasses.replace(spec, domains=domains)
            specs.append(spec)
        server = cls(
            specs, ports_per_sshd=ports_per_sshd, base_dir=base_dir, sshd_options=sshd_options
        )
        try:
            server._start(timeout)
        except BaseException:
            server.close()
            raise
        return server

    def __enter__(self) -> SshdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, name: str) -> FakeXenHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @property
    def sshd_pids(self) -> list[int]:
        """The listener pid of every sshd process."""
        return [s.pid for s in self._sshds if s.popen is not None]

    def all_pids(self) -> set[int]:
        """Every live process of this server: listeners, connections, sessions."""
        table = _proc_table()
        pids = set(self.sshd_pids)
        for pid in self.sshd_pids:
            pids.update(_descendants(pid, table))
        return pids | _sessions_of(self.root)

    def log_text(self) -> str:
        return "".join(s.log.read_text(errors="replace") for s in self._sshds if s.log.exists())

    def close(self) -> None:
        """Stop every process (sessions first, so sshd reaps them) and delete the files."""
        self._finalizer()

    # --- start-up

    def _start(self, timeout: float) -> None:
        self.keys_dir.mkdir()
        (self.root / "hosts").mkdir()
        if os.geteuid() == 0:
            # sshd's privilege separation chroots into this; Debian creates it only at boot.
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self._write_keys()
        self._install_fakes()
        # Ports are picked just before sshd binds them (in _spawn): rendering 200 hosts
        # takes seconds, long enough for another process to grab a probed port.
        self.hosts.extend(self._make_host(spec) for spec in self.specs)
        self._render_outputs()
        chunks = [
            self.hosts[i : i + self.ports_per_sshd]
            for i in range(0, len(self.hosts), self.ports_per_sshd)
        ]
        for index, chunk in enumerate(chunks):
            self._sshds.append(
                _Sshd(
                    index,
                    chunk,
                    self.root / f"sshd-{index}.conf",
                    self.root / f"sshd-{index}.log",
                    self.root / f"sshd-{index}.pid",
                )
            )
        deadline = time.monotonic() + timeout
        pending = list(self._sshds)
        for attempt in range(4):
            for sshd in pending:
                self._spawn(sshd)
            failed = [s for s in pending if not self._wait_ready(s, deadline)]
            if not failed:
                break
            # Another process took a port between probing and sshd's bind: new ports.
            for sshd in failed:
                log = sshd.log.read_text(errors="replace")
                if "Address already in use" not in log:
                    raise RuntimeError(f"sshd did not start:\n{log}")
                if attempt == 3:
                    raise RuntimeError(f"sshd could not bind after retries:\n{log}")
                sshd.log.write_text("")
            pending = failed
        self._write_known_hosts()

    def _write_keys(self) -> None:
        keys: dict[str, asyncssh.SSHKey] = {}
        for name in ("host", "wrong_host", "client", "wrong_client"):
            key = asyncssh.generate_private_key("ssh-ed25519", comment=f"sshfake-{name}")
            path = self.keys_dir / f"{name}_ed25519"
            # sshd and ssh refuse private keys others can read.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.export_private_key("openssh"))
            path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
            keys[name] = key
        self.authorized_keys.write_bytes(keys["client"].export_public_key("openssh"))

    def _write_known_hosts(self) -> None:
        for path, name in ((self.known_hosts, "host"), (self.wrong_known_hosts, "wrong_host")):
            public = (self.keys_dir / f"{name}_ed25519.pub").read_text().split()
            lines = [f"[{h.address}]:{h.port} {public[0]} {public[1]}\n" for h in self.hosts]
            path.write_text("".join(lines))

    def _install_fakes(self) -> None:
        fakebin = self.root / "fakebin"
        fakebin.mkdir()
        for tool in (*_TOOLS, _LONGRUN, _TEST, _FIND, *_HOST_TOOLS):
            shutil.copyfile(_FAKE_BIN / tool, fakebin / tool)
            (fakebin / tool).chmod(0o755)
        helper = self.root / "helper"
        helper.mkdir()
        shutil.copyfile(_HELPER, helper / "xenstate.py")
        shutil.copyfile(_CONSOLE, helper / "xenconsole.py")
        shutil.copyfile(_MIGRATE, helper / "xenmigrate.py")
        boot_log = next(path for path in _BOOT_LOGS if path.exists())
        # CR LF, as a serial console prints it (a recording has it already).
        text = re.sub(rb"(?<!\r)\n", b"\r\n", boot_log.read_bytes())
        (helper / "boot.log").write_bytes(text)
        (helper / "xenfake.py").write_text(_RUNNER)

    def _make_host(self, spec: HostSpec) -> FakeXenHost:
        state_dir = self.root / "hosts" / spec.name
        bin_dir = state_dir / "bin"
        bin_dir.mkdir(parents=True)
        tools = _TOOLS if spec.toolstack == "both" else (spec.toolstack,)
        for tool in (*tools, _LONGRUN, _TEST, _FIND, *_HOST_TOOLS):
            (bin_dir / tool).symlink_to(self.root / "fakebin" / tool)
        state = xenstate.new_state(
            spec.name,
            spec.domains or [],
            toolstack=spec.toolstack,
            info=spec.info,
            shutdown_delay=spec.shutdown_delay,
            cpu_steps=spec.cpu_steps,
            address=spec.address,
            paths=spec.paths,
            bridges=spec.bridges,
        )
        (state_dir / xenstate.STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        return FakeXenHost(spec.name, 0, state_dir, spec.toolstack, self, address=spec.address)

    def _render_outputs(self) -> None:
        """Pre-render every host's outputs; a big estate (200 hosts x 50 domains is
        ~10 s of pure Python) is split over one helper process per CPU."""
        dirs = [str(h.state_dir) for h in self.hosts]
        workers = min(os.cpu_count() or 1, len(dirs) // 8)
        if workers < 2:
            for path in dirs:
                xenstate.save_state(Path(path), xenstate.load_state(Path(path)))
            return
        runner = str(self.root / "helper" / "xenfake.py")
        procs = [
            subprocess.Popen([sys.executable, "-I", "-S", runner, "--render", *dirs[i::workers]])
            for i in range(workers)
        ]
        failed = [p.args for p in procs if p.wait() != 0]
        if failed:
            raise RuntimeError(f"rendering the fake hosts failed: {failed}")

    def _config_text(self, sshd: _Sshd) -> str:
        lines = [f"ListenAddress {h.address}:{h.port}" for h in sshd.hosts]
        lines += [
            f"HostKey {self.host_key}",
            f"PidFile {sshd.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            # AuthorizedKeysFile is absolute: without this the key would open every account.
            f"AllowUsers {self.username}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "PermitUserRC no",
            "PermitUserEnvironment no",
            "MaxStartups 500:30:1000",
            "MaxSessions 10",
            "LogLevel VERBOSE",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "X11Forwarding no",
            "Subsystem sftp internal-sftp",
            *self.sshd_options,
        ]
        for host in sshd.hosts:
            env = {
                "SHLVL": "1",  # see the module docstring: keeps bash from reading ~/.bashrc
                "PATH": f"{host.state_dir / 'bin'}:/usr/bin:/bin",
                "XENFAKE_ROOT": str(self.root),
                "XENFAKE_HOST": host.name,
                "XENFAKE_STATE": str(host.state_dir),
                "XENFAKE_PYTHON": sys.executable,
                "XENFAKE_HELPER": str(self.root / "helper" / "xenfake.py"),
            }
            lines.append(f"Match LocalPort {host.port}")
            lines.append("    SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()))
        return "\n".join(lines) + "\n"

    def _spawn(self, sshd: _Sshd) -> None:
        for host, port in zip(sshd.hosts, _free_ports(len(sshd.hosts)), strict=True):
            host.port = port
        sshd.config.write_text(self._config_text(sshd))
        sshd.pid_file.unlink(missing_ok=True)
        with open(sshd.log, "ab") as log:
            sshd.popen = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(sshd.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
                start_new_session=True,
                preexec_fn=_die_with_parent_fn(),
            )

    def _wait_ready(self, sshd: _Sshd, deadline: float) -> bool:
        """Pid file written (sockets bound and listening), then a banner read. False
        when a port was taken meanwhile: sshd exits only if it could bind no address at
        all, so a partial failure is read from its log and that sshd is stopped."""
        assert sshd.popen is not None
        while not sshd.pid_file.exists():
            if sshd.popen.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"sshd {sshd.index} not ready:\n{sshd.log.read_text()}")
            time.sleep(0.002)
        if "Bind to port" in sshd.log.read_text(errors="replace"):
            _stop_sshd(sshd)
            return False
        host = sshd.hosts[0]
        with socket.create_connection((host.address, host.port), timeout=5) as sock:
            banner = sock.makefile("rb").readline()
        if not banner.startswith(b"SSH-2.0-OpenSSH"):
            raise RuntimeError(f"unexpected banner {banner!r} on port {host.port}")
        return True

    # --- stop/cont support

    def _sshd_of(self, host: FakeXenHost) -> _Sshd:
        for sshd in self._sshds:
            if host in sshd.hosts:
                return sshd
        raise KeyError(host.name)

    def _host_pids(self, host: FakeXenHost) -> set[int]:
        sshd = self._sshd_of(host)
        table = _proc_table()
        if len(sshd.hosts) == 1:
            return {sshd.pid, *_descendants(sshd.pid, table)}
        return _connection_pids(sshd.pid, host.port, table)

    def _freeze(self, host: FakeXenHost) -> set[int]:
        frozen: set[int] = set()
        sshd = self._sshd_of(host)
        if len(sshd.hosts) == 1:
            # The listener first, so no new connection process appears behind our back.
            _signal_all([sshd.pid], signal.SIGSTOP)
            frozen.add(sshd.pid)
        # A process forking while we signal leaves a child we have not seen: repeat
        # until a pass finds nothing new.
        for _ in range(50):
            new = self._host_pids(host) - frozen
            if not new:
                break
            _signal_all(new, signal.SIGSTOP)
            frozen |= new
        return frozen


# --------------------------------------------------------------- process helpers


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent_fn() -> Callable[[], None] | None:
    """If pytest itself is killed, the sshd listener gets SIGTERM (PR_SET_PDEATHSIG).

    The signal fires when the forking *thread* exits, so only ask for it from the main
    thread; from a worker thread the finalizer/atexit teardown has to do.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG

    return set_pdeathsig


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state letter) for every process we can see."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0].decode())
    return table


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> list[int]:
    """Descendants of ``root``, parents before children."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _depths(root: int, table: dict[int, tuple[int, str]]) -> dict[int, int]:
    depth = {root: 0}
    for pid in _descendants(root, table):
        depth[pid] = depth[table[pid][0]] + 1
    return depth


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    """Exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def _wait_gone(pids: Iterable[int], timeout: float) -> None:
    """Until every pid has been reaped (not just turned zombie), or timeout."""
    deadline = time.monotonic() + timeout
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        remaining = {p for p in remaining if os.path.exists(f"/proc/{p}")}
        if remaining:
            time.sleep(0.005)


def _socket_inodes(local_port: int) -> set[int]:
    """Inodes of established TCP sockets whose local port is ``local_port``."""
    inodes: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    port = int(parts[1].rsplit(":", 1)[1], 16)
                    if port == local_port and parts[3] != "0A":  # 0A = LISTEN
                        inodes.add(int(parts[9]))
        except OSError:
            continue
    return inodes


def _fd_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _connection_pids(listener: int, port: int, table: dict[int, tuple[int, str]]) -> set[int]:
    """Processes of the connections ``listener`` accepted on ``port``, sessions included.

    Each connection is a child of the listener (sshd setsid()s it, so process groups do
    not help); its subtree holds the socket.
    """
    inodes = _socket_inodes(port)
    pids: set[int] = set()
    for pid, (ppid, _) in table.items():
        if ppid != listener:
            continue
        subtree = [pid, *_descendants(pid, table)]
        if any(_fd_inodes(p) & inodes for p in subtree):
            pids.update(subtree)
    return pids


def _sessions_of(root: Path) -> set[int]:
    """Processes started by our sessions, found by the XENFAKE_ROOT that sshd's SetEnv
    put in their environment; catches sessions orphaned by a dead connection. (sshd's
    own processes cannot be found this way: setproctitle overwrites their environ.)"""
    marker = b"\0XENFAKE_ROOT=" + os.fsencode(root) + b"\0"
    found: set[int] = set()
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                data = b"\0" + f.read()
        except OSError:
            continue
        if marker in data and _alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def _stop_sshd(sshd: _Sshd) -> None:
    if sshd.popen is None:
        return
    listener = sshd.popen.pid
    for _ in range(5):
        table = _proc_table()
        depth = _depths(listener, table)
        tree = [p for p in depth if p != listener]
        _signal_all([listener, *tree], signal.SIGCONT)  # stop() may have frozen them
        if not tree:
            break
        # Deepest first: each killed process's parent is still alive to reap it, so
        # nothing is left as a zombie for an init that may never reap.
        for level in sorted({depth[p] for p in tree}, reverse=True):
            pids = [p for p in tree if depth[p] == level]
            _signal_all(pids, signal.SIGKILL)
            _wait_gone(pids, 1.0)
    sshd.popen.terminate()
    try:
        sshd.popen.wait(timeout=2)
    except subprocess.TimeoutExpired:
        sshd.popen.kill()
        sshd.popen.wait()


def _teardown(sshds: list[_Sshd], root: Path) -> None:
    for sshd in sshds:
        with contextlib.suppress(Exception):
            _stop_sshd(sshd)
    # Orphans belong to init now: wait for them to die, reaping is init's business.
    orphans = _sessions_of(root)
    _signal_all(orphans, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while any(_alive(p) for p in orphans) and time.monotonic() < deadline:
        time.sleep(0.005)
    shutil.rmtree(root, ignore_errors=True)
