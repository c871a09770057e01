"""The commands an import runs on an SSH-reached utility host, and how their output reads.

Pure: argv builders and parsers, tested on their own. Every script is a constant given to
``sh -c`` with the paths and the URL as its positional arguments (``$1`` …): nothing the
operator typed is ever part of a script's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ovmtui.import_plan import bad_member

Tool = Literal["curl", "wget"]
MARK: Final = "@ovmtui"
CONNECT_TIMEOUT_S: Final = 20
MAX_REDIRECTS: Final = 10

# Which download tool the host has (curl first: it says more when it fails), and whether it
# has sha256sum.
TOOLS_SCRIPT: Final = (
    'for t in curl wget sha256sum; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; :'
)

# $1 the folder, $2 the final path, $3 the partial path. Refuses what is there already,
# creates the folder and says the topmost one it created (for the clean-up), then the free
# space where it is.
PREPARE_SCRIPT: Final = f"""
if [ -e "$2" ]; then echo "{MARK} exists"; exit 0; fi
if [ -e "$3" ]; then echo "{MARK} partial"; exit 0; fi
top=; d=$1
while [ ! -d "$d" ]; do top=$d; d=$(dirname -- "$d"); done
mkdir -p -- "$1" || exit 1
echo "{MARK} created $top"
df -P -B1 -- "$1" | tail -n 1
"""

# wget's FTP spider writes a `.listing` file where it runs: somewhere it may.
IN_TMP_SCRIPT: Final = 'cd "${TMPDIR:-/tmp}" && exec "$@"'

# $1 the partial file, $2 "1" to checksum it, then the download tool's argv.
# The download runs in the background: the shell waits for it (no polling delay at its end)
# while a meter prints the partial file's size twice a second, read by ovmtui as progress.
# A guard reads the channel's input: when ovmtui closes the channel (a cancel, ovmtui
# ending, the connection lost) its input ends, and the guard kills the download and removes
# the partial file; sshd sends no signal, so without it the download would run on. The
# meter ends with the download, whatever becomes of the shell that started it.
DOWNLOAD_SCRIPT: Final = f"""
partial=$1; sum=$2; shift 2
exec 3<&0
"$@" </dev/null &
pid=$!
( cat <&3 >/dev/null 2>&1
  kill "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f -- "$partial" ) >/dev/null 2>&1 &
guard=$!
( while kill -0 "$pid" 2>/dev/null; do
    s=$(stat -c %s -- "$partial" 2>/dev/null) && echo "{MARK} bytes $s"
    sleep 0.5 >/dev/null 2>&1
  done ) &
meter=$!
wait "$pid"; rc=$?
kill "$meter" 2>/dev/null
if [ "$rc" -ne 0 ]; then
  kill "$guard" 2>/dev/null; rm -f -- "$partial"; exit "$rc"
fi
echo "{MARK} bytes $(stat -c %s -- "$partial")"
if [ "$sum" = 1 ]; then
  echo "{MARK} sha256 $(sha256sum -- "$partial" | cut -c1-64)"
fi
kill "$guard" 2>/dev/null
exit 0
"""

# $1 the partial file, $2 the final path: renamed only if nothing took its place meanwhile.
PLACE_SCRIPT: Final = f"""
if [ -e "$2" ]; then echo "{MARK} exists"; exit 3; fi
mv -- "$1" "$2"
"""

# $1 the archive: its listing alone on the output (tar's warnings would mix with it on a
# long channel), and on failure tar's own words, from a second reading.
LIST_SCRIPT: Final = """
tar -tvf "$1" 2>/dev/null; rc=$?
if [ "$rc" -ne 0 ]; then tar -tf "$1" 2>&1 >/dev/null | tail -n 3; fi
exit "$rc"
"""

# $1 the archive, $2 the unpacking folder, $3 the final folder, $4 the folders to strip.
UNPACK_SCRIPT: Final = f"""
if [ -e "$3" ]; then echo "{MARK} exists"; exit 3; fi
mkdir -- "$2" || exit 1
tar -x --no-same-owner --no-same-permissions -f "$1" -C "$2" --strip-components="$4" \\
  || {{ rm -rf -- "$2"; exit 1; }}
mv -- "$2" "$3" || {{ rm -rf -- "$2"; exit 1; }}
rm -f -- "$1"
"""

# $1 the import's folder, $2 the topmost folder it created ("": none), then the paths it
# may have left. The folders it created go too, each only while empty.
CLEANUP_SCRIPT: Final = """
folder=$1; top=$2; shift 2
rm -rf -- "$@"
if [ -n "$top" ]; then
  d=$folder
  while rmdir -- "$d" 2>/dev/null && [ "$d" != "$top" ]; do d=$(dirname -- "$d"); done
fi
:
"""


def sh(script: str, *args: str) -> list[str]:
    """``sh -c SCRIPT sh ARGS…``: the arguments reach the script as ``$1`` …, unparsed."""
    return ["sh", "-c", script, "sh", *args]


def probe_argv(tool: Tool, url: str) -> list[str]:
    """A HEAD request (its status, size and redirects), before anything is written."""
    if tool == "curl":
        return [
            "curl", "-sS", "-I", "-L", "--max-redirs", str(MAX_REDIRECTS),
            "--connect-timeout", str(CONNECT_TIMEOUT_S), url,
        ]  # fmt: skip
    return [
        *sh(IN_TMP_SCRIPT), "wget", "--spider", "-S", f"--max-redirect={MAX_REDIRECTS}",
        "-T", str(CONNECT_TIMEOUT_S), "-t", "1", url,
    ]  # fmt: skip


def download_argv(tool: Tool, url: str, partial: str) -> list[str]:
    """The download itself into ``partial``: errors printed, no progress meter."""
    if tool == "curl":
        return [
            "curl", "-sS", "-f", "-L", "--max-redirs", str(MAX_REDIRECTS),
            "--connect-timeout", str(CONNECT_TIMEOUT_S), "-o", partial, url,
        ]  # fmt: skip
    return [
        "wget", "-nv", f"--max-redirect={MAX_REDIRECTS}", "-T", str(CONNECT_TIMEOUT_S),
        "-t", "1", "-O", partial, url,
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the host said before the download: free space, and whether the folder is new."""

    free_bytes: int | None
    created: str  # the topmost folder it created, "" when the folder was there
    exists: Literal["final", "partial", None] = None


def read_tools(output: str) -> tuple[Tool | None, bool]:
    """The download tool the host has (curl preferred) and whether it has ``sha256sum``."""
    found = set(output.split())
    tool: Tool | None = "curl" if "curl" in found else "wget" if "wget" in found else None
    return tool, "sha256sum" in found


def read_prepared(output: str) -> Prepared:
    """``PREPARE_SCRIPT``'s output."""
    lines = output.splitlines()
    if f"{MARK} exists" in lines:
        return Prepared(None, "", "final")
    if f"{MARK} partial" in lines:
        return Prepared(None, "", "partial")
    created = next(
        (
            line.removeprefix(f"{MARK} created ")
            for line in lines
            if line.startswith(f"{MARK} created ")
        ),
        "",
    )
    free: int | None = None
    for line in lines:
        fields = line.split()
        # df -P: filesystem, 1-blocks, used, available, capacity, mounted on
        if len(fields) >= 6 and fields[3].isdigit() and not line.startswith(MARK):
            free = int(fields[3])
    return Prepared(free, created)


@dataclass(frozen=True, slots=True)
class Probe:
    """A HEAD request's answer: the size when the server says it."""

    size: int | None


_HTTP_STATUS = re.compile(r"^\s*HTTP/[\d.]+\s+(\d{3})\s*(.*)$")
_LENGTH = re.compile(r"^\s*Content-Length:\s*(\d+)\s*$", re.IGNORECASE)
_WGET_LENGTH = re.compile(r"^Length:\s*(\d+)")
_WGET_FTP_SIZE = re.compile(r"SIZE .*\.\.\.\s*(\d+)\s*$")
_WGET_EXISTS = re.compile(r"^(Remote file|File .+) exists\.", re.MULTILINE)
_FTP_SIZE = re.compile(r"^\s*213\s+(\d+)\s*$")
# A server that does not answer HEAD (or refuses it) may still serve the file: the size is
# then unknown and the download itself says whether the file is there.
_NO_HEAD = frozenset({405, 501})


class ProbeFailed(Exception):
    """The URL cannot be fetched, in the operator's words (raised by the parsers)."""


def read_probe(tool: Tool, status: int | None, output: str) -> Probe:
    """The size the server announced; ``ProbeFailed`` when the URL cannot be fetched."""
    lines = output.splitlines()
    if tool == "curl":
        if status != 0:
            raise ProbeFailed(failure("curl", status, output))
        size: int | None = None
        code: int | None = None
        reason = ""
        for line in lines:
            if match := _HTTP_STATUS.match(line):
                code, reason, size = int(match[1]), match[2].strip(), None  # a new hop
            elif match := _LENGTH.match(line):
                size = int(match[1])
        if code is not None and code >= 400 and code not in _NO_HEAD:
            raise ProbeFailed(f"the server answered {code} {reason}".rstrip())
        if code is not None and 300 <= code < 400:
            raise ProbeFailed(f"the server answered {code} {reason} without a place to go")
        return Probe(size if code is None or code < 300 else None)
    answers = [(int(m[1]), m[2].strip()) for line in lines if (m := _HTTP_STATUS.match(line))]
    # wget's FTP spider may exit 8 over a directory listing it reads badly, having said
    # the file exists: its words count.
    exists = _WGET_EXISTS.search(output) is not None
    if status != 0 and not exists:
        if answers and answers[-1][0] in _NO_HEAD:
            return Probe(None)
        if answers and answers[-1][0] >= 400:
            raise ProbeFailed(f"the server answered {answers[-1][0]} {answers[-1][1]}".rstrip())
        raise ProbeFailed(failure("wget", status, output))
    sizes = [int(m[1]) for line in lines if (m := _WGET_LENGTH.match(line.strip()))]
    sizes += [int(m[1]) for line in lines if (m := _WGET_FTP_SIZE.search(line))]
    sizes += [  # with -S, FTP's own answer to SIZE: "213 N" after "--> SIZE name"
        int(m[1])
        for before, line in zip(lines, [*lines[1:], ""], strict=True)
        if before.startswith("--> SIZE") or not before.strip()
        if (m := _FTP_SIZE.match(line))
    ]
    return Probe(sizes[-1] if sizes else None)


_CURL_WHY: Final[dict[int, str]] = {
    3: "the URL is malformed",
    5: "the proxy's name does not resolve",
    6: "the server's name does not resolve",
    7: "the server cannot be reached (connection refused or no route)",
    9: "the FTP server refused access to the file",
    18: "the transfer ended before the whole file came",
    22: "the server answered with an error",
    23: "writing to the storage failed (is it full?)",
    28: "the server did not answer in time",
    35: "the TLS handshake failed",
    47: "a redirect loop (more than 10 redirects)",
    52: "the server closed the connection without answering",
    56: "the connection broke during the transfer",
    60: "the server's certificate is not trusted",
    67: "the FTP server refused the login",
    78: "the file does not exist on the server",
}
_WGET_WHY: Final[dict[int, str]] = {
    3: "writing to the storage failed (is it full?)",
    4: "the server cannot be reached, or the connection broke",
    5: "the server's certificate is not trusted (TLS failed)",
    6: "the server refused the login",
    8: "the server answered with an error",
}
_WGET_DETAIL = (
    (re.compile(r"redirections exceeded"), "a redirect loop (more than 10 redirects)"),
    (re.compile(r"No such file|does not exist"), "the file does not exist on the server"),
    (re.compile(r"unable to resolve host"), "the server's name does not resolve"),
    (re.compile(r"Connection refused"), "the server refused the connection"),
    (re.compile(r"ERROR (\d{3}): (.*)"), None),
)


def failure(tool: Tool, status: int | None, output: str) -> str:
    """Why a download or probe failed, in words, with the tool's own last line."""
    lines = [
        line.strip() for line in output.splitlines() if line.strip() and not line.startswith(MARK)
    ]
    last = lines[-1] if lines else ""
    if status is None:
        return f"{tool} was stopped before it ended" + (f": {last}" if last else "")
    if tool == "curl":
        own = next((line for line in reversed(lines) if line.startswith("curl: (")), last)
        why = _CURL_WHY.get(status, f"curl failed (exit status {status})")
        if status == 22 and (m := re.search(r"error: (\d{3})", own)):
            why = f"the server answered {m[1]}"
        return f"{why}: {own}" if own else why
    text = "\n".join(lines)
    for pattern, words in _WGET_DETAIL:
        if match := pattern.search(text):
            why = words or f"the server answered {match[1]} {match[2].strip()}"
            break
    else:
        why = _WGET_WHY.get(status, f"wget failed (exit status {status})")
    return f"{why}: {last}" if last else why


@dataclass(frozen=True, slots=True)
class Member:
    """One entry of an archive's listing (``tar -tvf``)."""

    kind: str  # "-" file, "d" folder, "l" symbolic link, "h" hard link, …
    size: int
    name: str
    target: str | None = None  # a link's


def read_listing(output: str) -> list[Member]:
    """``tar -tvf``'s lines (GNU tar: ``-rw-r--r-- user/group SIZE DATE TIME NAME``)."""
    members: list[Member] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[2].isdigit():
            raise ValueError(f"an archive listing line that does not read: {line!r}")
        kind, size, rest = fields[0][0], int(fields[2]), fields[5]
        target: str | None = None
        if kind == "l" and " -> " in rest:
            rest, target = rest.split(" -> ", 1)
        elif kind == "h" and " link to " in rest:
            rest, target = rest.split(" link to ", 1)
        members.append(Member(kind, size, rest, target))
    return members


def archive_refusal(members: Sequence[Member]) -> str | None:
    """Why an archive is not unpacked (a member outside its folder, a link out of it, no
    ``vm.cfg``), or None."""
    if not members:
        return "the archive is empty"
    for member in members:
        why = bad_member(member.name)
        if why is not None:
            return f"the archive's member {why}"
        if member.target is not None and (
            member.target.startswith("/") or ".." in member.target.split("/")
        ):
            return f"the archive's link {member.name!r} points outside it ({member.target!r})"
        if member.kind not in "-dlh":
            return f"the archive's member {member.name!r} is a device or a pipe"
    names = [m.name.removeprefix("./").strip("/") for m in members]
    if not any(n == "vm.cfg" or (n.count("/") == 1 and n.endswith("/vm.cfg")) for n in names):
        return "the archive holds no vm.cfg (at its top or in its one folder): not a template"
    return None
