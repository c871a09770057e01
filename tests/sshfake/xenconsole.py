"""``xm console`` / ``xl console`` of the fake dom0: a per-domain pseudo-guest on the PTY.

Standard library only, and run inside an SSH session like ``xenstate.py`` (whose ``main``
hands ``console`` here): ``import xenstate`` finds the helper's copy beside this file.

What the real tools do, and this one imitates: ``xm console`` asks xend for the domain's
id (``Error: Domain 'X' does not exist.``, or ``Error: Domain 'X' is not started`` and the
usage text, exit 1), ``xl console`` resolves the name (``X is an invalid domain identifier
(rc=-6)``, exit 1), and both exec ``xenconsole``. That one puts the terminal in raw mode
with ``TCSAFLUSH``, which throws away whatever was typed before, prints nothing, and
relays bytes until the client types ``Ctrl+]`` (0x1d) or the domain's console goes away
(it was destroyed, shut down or rebooted), then exits 0 without a word.

The pseudo-guest: the first attach to a domain (to a domain id: a reboot is a new guest)
replays the recorded boot log, as the guest printed it while booting; every later attach
shows nothing until a key is pressed, as on an idle real guest. Then a line shell: a
prompt ``root@NAME:~# ``, ``echo``, ``ls``, ``uname [-a|-r|-n|-m]``, ``hostname``,
``stty size``, ``exit``/``logout`` (the guest's getty gives a new prompt: the console does
not end), anything else ``sh: X: not found``. It echoes what is typed, erases on
Backspace, and ends lines with CR LF, as a serial console does. A paused domain takes the
attach but its guest neither prints nor reads until unpaused.

``$XENFAKE_STATE/console.log`` says what each attach did, one ``<pid> <what>`` a line:
``attach NAME DOMID``, then how it ended: ``escape`` (Ctrl+]), ``eof`` (input closed),
``hup``, ``term``, ``gone`` (the domain stopped or changed id); ``refused IDENT`` for an
attach that failed. Knobs in ``state.json``: ``console_attach_delay`` (seconds between
the domain check and raw mode, as xm's own start-up and xend's answer take; 0.2 if unset),
``console_exit_delay`` (seconds between a refusal's words and the exit; 0 if unset).
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import os
import re
import select
import shlex
import signal
import struct
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

import xenstate  # the helper's copy, beside this file

BOOTED_DIR = "console"  # <uuid>.<domid> markers: that guest has printed its boot log
BOOT_LOG = "boot.log"  # beside this file: installed by sshd.py from tests/data/console
ESCAPE = 0x1D  # Ctrl+], xenconsole's escape character
STATE_POLL_S = 0.1
DEFAULT_ATTACH_DELAY_S = 0.2

_LONE_LF = re.compile(rb"(?<!\r)\n")

XM_CONSOLE_USAGE = (
    "Usage: xm console [-q|--quiet] <Domain>\n\nAttach to <Domain>'s console.\n\n"
    "  -q, --quiet                    "
    "Do not print an error message if the domain does not exist\n\n"
)
XL_CONSOLE_USAGE = (
    "Usage: xl [-v] console [options] <Domain>\n"
    "-t <type>       console type, pv , serial or vuart\n"
    "-n <number>     console number\n\n"
    "Attach to domain's console.\n\n"
)


class _Ended(Exception):
    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


def main(tool: str, args: list[str], state_dir: Path) -> int:
    quiet = False
    names: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
        elif arg in ("-q", "--quiet") and tool == "xm":
            quiet = True
        elif arg in ("-t", "-n") and tool == "xl":
            skip_value = True
        elif not arg.startswith("-") or arg == "-":
            names.append(arg)
    if len(names) != 1:
        if tool == "xm":
            _err("Error: 'xm console' requires between 1 and 2 arguments.\n\n", XM_CONSOLE_USAGE)
        else:
            _err("", XL_CONSOLE_USAGE)
        return 1 if tool == "xm" else 2
    ident = names[0]
    state = xenstate.update_state(state_dir)
    refusal = _refusal(tool, ident, state)
    if refusal is not None:
        _log(state_dir, f"refused {ident}")
        if not quiet:
            _err(*refusal)
        # A slow exit after the words (xm's atexit handlers, a loaded dom0).
        time.sleep(float(state.get("console_exit_delay", 0.0)))
        return 1
    dom = xenstate.find_domain(state, tool, ident)
    assert dom is not None
    return _attach(state_dir, state, dom)


def _refusal(tool: str, ident: str, state: dict[str, Any]) -> tuple[str, str] | None:
    """(stderr, stdout) of a console the tool refuses, as it words it; None to attach."""
    if xenstate._is_dom0(ident):
        # xenconsole's own bail-out for dom0 (an approximation of its err() line).
        return ("xenconsole: Could not read tty from store: No such file or directory\n", "")
    dom = xenstate.find_domain(state, tool, ident)
    if dom is None:
        if tool == "xm":
            return (f"Error: Domain '{ident}' does not exist.\n", "")
        return (f"{ident} is an invalid domain identifier (rc=-6)\n", "")
    if not xenstate._is_running(dom):  # only xm sees a shut-off (managed) domain
        return (f"Error: Domain '{ident}' is not started\n", XM_CONSOLE_USAGE)
    return None


def _err(stderr: str, stdout: str) -> None:
    sys.stdout.write(stdout)
    sys.stdout.flush()
    sys.stderr.write(stderr)
    sys.stderr.flush()


def _log(state_dir: Path, what: str) -> None:
    with open(state_dir / xenstate.CONSOLE_LOG, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {what}\n")


# ------------------------------------------------------------------------- attached


def _attach(state_dir: Path, state: dict[str, Any], dom: dict[str, Any]) -> int:
    uuid, domid, name = dom["uuid"], dom["domid"], dom["name"]
    _log(state_dir, f"attach {name} {domid}")
    hung_up: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        hung_up.append("hup" if signum == signal.SIGHUP else "term")

    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    time.sleep(float(state.get("console_attach_delay", DEFAULT_ATTACH_DELAY_S)))
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = None
    if os.isatty(fd_in):
        saved = termios.tcgetattr(fd_in)
        # As xenconsole: raw, and what was typed before is thrown away.
        tty.setraw(fd_in, termios.TCSAFLUSH)
    guest = _Guest(name, fd_in)
    marker = state_dir / BOOTED_DIR / f"{uuid}.{domid}"
    if not marker.exists():
        marker.parent.mkdir(exist_ok=True)
        marker.write_text("", encoding="utf-8")
        guest.output += _boot_log() + guest.prompt()
    how = "eof"
    try:
        _relay(state_dir, uuid, domid, guest, fd_in, fd_out, hung_up)
    except _Ended as ended:
        how = ended.how
    finally:
        if saved is not None and how not in ("hup", "eof"):
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd_in, termios.TCSAFLUSH, saved)
        _log(state_dir, how)
    return {"hup": 129, "term": 143}.get(how, 0)


def _relay(
    state_dir: Path,
    uuid: str,
    domid: int,
    guest: _Guest,
    fd_in: int,
    fd_out: int,
    hung_up: list[str],
) -> None:
    state_file = state_dir / xenstate.STATE_FILE
    seen = None
    paused = False
    next_check = 0.0
    typed = b""  # keys the guest has not read yet (it is paused)
    on_tty = os.isatty(fd_in)  # asked now: a terminal that hung up is no longer one
    for fd in (fd_in, fd_out):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    while True:
        if hung_up:
            raise _Ended(hung_up[0])
        now = time.monotonic()
        if now >= next_check:
            next_check = now + STATE_POLL_S
            try:
                stamp = state_file.stat().st_mtime_ns
            except OSError:
                stamp = None
            if stamp != seen:
                seen = stamp
                running = _running_state(state_dir, uuid, domid)
                if running is None:
                    raise _Ended("gone")
                paused = "p" in running
        if not paused and typed:
            guest.feed(typed)
            typed = b""
        pending = guest.output if not paused else b""
        try:
            readable, writable, _ = select.select(
                [fd_in], [fd_out] if pending else [], [], STATE_POLL_S
            )
        except InterruptedError:
            continue
        if writable:
            try:
                written = os.write(fd_out, pending)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                raise _Ended("hup") from exc
            guest.output = guest.output[written:]
        if readable:
            try:
                data = os.read(fd_in, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                # EIO: the terminal's other side (sshd) is gone.
                raise _Ended("hup" if on_tty or exc.errno == errno.EIO else "eof") from exc
            if not data:
                # On a terminal, the end of input is its other side hanging up.
                raise _Ended("hup" if on_tty else "eof")
            if ESCAPE in data:
                raise _Ended("escape")
            typed += data


def _running_state(state_dir: Path, uuid: str, domid: int) -> str | None:
    """The domain's state flags while it still runs with ``domid``; None once it does not
    (destroyed, shut down, rebooted: xenconsoled closes the console then)."""
    try:
        state = xenstate.load_state(state_dir)
    except (OSError, ValueError):
        return ""  # between writes: unchanged as far as we know
    xenstate.settle(state)  # a delayed shutdown that is due ends the console too
    for dom in state["domains"]:
        if dom["uuid"] == uuid:
            return (dom["state"] or "-") if dom["domid"] == domid else None
    return None


def _boot_log() -> bytes:
    path = Path(__file__).resolve().parent / BOOT_LOG
    try:
        data = path.read_bytes()
    except OSError:
        data = b"Linux version 4.14.35 (fake boot log missing)\n"
    return _LONE_LF.sub(b"\r\n", data)


# ---------------------------------------------------------------------------- guest


class _Guest:
    """The pseudo-guest's line shell: reads keys, writes what a serial console shows."""

    def __init__(self, name: str, tty_fd: int) -> None:
        self.name = name
        self.output = b""
        self._tty_fd = tty_fd
        self._line = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._after_cr = False
        self._in_escape = False

    def prompt(self) -> bytes:
        return f"root@{self.name}:~# ".encode()

    def feed(self, data: bytes) -> None:
        for char in self._decoder.decode(data):
            self._key(char)

    def _key(self, char: str) -> None:
        if self._in_escape:
            # CSI/SS3 sequences (arrows, function keys): ignored up to their final byte.
            if char.isalpha() or char == "~":
                self._in_escape = False
            return
        if char == "\x1b":
            self._in_escape = True
            return
        after_cr, self._after_cr = self._after_cr, char == "\r"
        if char == "\n" and after_cr:
            return  # CR LF is one Enter
        if char in "\r\n":
            self.output += b"\r\n"
            line, self._line = self._line, ""
            self.output += self._run(line) + self.prompt()
        elif char in "\x7f\x08":
            if self._line:
                self._line = self._line[:-1]
                self.output += b"\b \b"
        elif char == "\x03":  # Ctrl+C
            self._line = ""
            self.output += b"^C\r\n" + self.prompt()
        elif char == "\x15":  # Ctrl+U
            self.output += b"\b \b" * len(self._line)
            self._line = ""
        elif char >= " ":
            self._line += char
            self.output += char.encode()

    def _run(self, line: str) -> bytes:
        try:
            words = shlex.split(line)
        except ValueError:
            return b"sh: syntax error: unterminated quoted string\r\n"
        if not words:
            return b""
        command, args = words[0], words[1:]
        text = self._answer(command, args)
        return "".join(f"{out}\r\n" for out in text.splitlines()).encode()

    def _answer(self, command: str, args: list[str]) -> str:
        release = "4.14.35-2047.518.4.3.el7uek.x86_64"
        if command == "echo":
            return " ".join(args) + "\n"
        if command == "ls":
            return "bin   dev  home  lib64  mnt  proc  run   srv  tmp  var\n" + (
                "boot  etc  lib   media  opt  root  sbin  sys  usr\n"
            )
        if command == "uname":
            built = "#2 SMP Tue Jan 4 12:00:00 PST 2022"
            full = f"Linux {self.name} {release} {built} x86_64 GNU/Linux"
            parts = {"-s": "Linux", "-n": self.name, "-r": release, "-m": "x86_64", "-a": full}
            return " ".join(parts.get(a, full) for a in args or ["-s"]) + "\n"
        if command == "hostname":
            return self.name + "\n"
        if command == "stty" and args == ["size"]:
            rows, columns, _, _ = struct.unpack(
                "HHHH", fcntl.ioctl(self._tty_fd, termios.TIOCGWINSZ, b"\0" * 8)
            )
            return f"{rows} {columns}\n"
        if command in ("exit", "logout"):
            # The guest's getty starts a new login: the console itself goes on.
            return "logout\n\n"
        if command == "true":
            return ""
        return f"sh: {command}: not found\n"
