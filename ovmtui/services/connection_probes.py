"""The pure half of a connection test: where a host is reached, the shell scripts that probe
it, and what their output means. No I/O here; ``connection_test`` runs them.

Every path reaches the host's shell as an argument of ``sh -c`` (``shlex.join``), never
written into a script.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from ovmtui import format as fmt
from ovmtui.backend.xen_parse.info import parse_info
from ovmtui.config import HostConfig, PoolConfig
from ovmtui.model import HostRole

MARKER_NAME = ".ovmtui-pool"
# Beyond this, a host's clock is reported as a failure: Oracle VM's agent refuses a server
# whose clock is minutes off, and logs, the journal and migrations' timings stop matching.
CLOCK_SKEW_LIMIT_S = 2.0

# libvirt's remote transports and the port each listens on when the URI names none.
_LIBVIRT_PORTS = {"ssh": 22, "libssh": 22, "libssh2": 22, "tcp": 16509, "tls": 16514}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where this machine opens a TCP connection to reach the host."""

    host: str
    port: int
    what: str = ""  # "jump host ", when the host itself is reached through one


@dataclass(frozen=True, slots=True)
class SshSide:
    """The SSH login a host is reached with: a Xen host's ``ssh =``, or the ssh part of a
    ``qemu+ssh://`` URI (its ``keyfile=`` the identity)."""

    target: str  # user@host[:port]
    identity: str | None = None
    known_hosts: str | None = None
    jump: str | None = None


def ssh_side(host: HostConfig) -> SshSide | None:
    if host.ssh is not None:
        return SshSide(host.ssh, host.identity, host.known_hosts, host.jump)
    if host.libvirt is None:
        return None
    parts = urlsplit(host.libvirt)
    transport = parts.scheme.partition("+")[2].lower()
    if transport not in ("ssh", "libssh", "libssh2") or not parts.hostname:
        return None
    query = dict(parse_qsl(parts.query))
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    user = f"{parts.username}@" if parts.username else ""
    return SshSide(
        f"{user}{name}:{parts.port or 22}",
        identity=query.get("keyfile"),
        known_hosts=query.get("known_hosts"),
    )


def endpoint(host: HostConfig, side: SshSide | None) -> Endpoint | None:
    """Where TCP goes first; None for a URI that names no host (``test:///``, a socket)."""
    from ovmtui.backend.xen_ssh import SshTarget  # the parser of ssh targets

    if side is not None:
        if side.jump:
            jump = SshTarget.parse(side.jump)
            return Endpoint(jump.host, jump.port, "jump host ")
        target = SshTarget.parse(side.target)
        return Endpoint(target.host, target.port)
    if host.libvirt is None:
        return None
    parts = urlsplit(host.libvirt)
    if not parts.hostname:
        return None
    transport = parts.scheme.partition("+")[2].lower()
    return Endpoint(parts.hostname, parts.port or _LIBVIRT_PORTS.get(transport or "tls", 16514))


# -- the Xen toolstack -------------------------------------------------------------------------


def toolstack_script(toolstack: str) -> str:
    """``xm info`` / ``xl info`` (``auto``: xm where it answers, as the backend decides),
    then a line naming the toolstack that answered and its status."""
    if toolstack in ("xm", "xl"):
        return f'{toolstack} info 2>&1; echo "@@toolstack {toolstack} $?"'
    return (
        'if command -v xm >/dev/null 2>&1 && out=$(xm info 2>&1); then printf "%s\\n" "$out"; '
        "echo @@toolstack xm 0; elif command -v xl >/dev/null 2>&1; then xl info 2>&1; "
        'echo "@@toolstack xl $?"; else echo @@toolstack none 127; fi'
    )


def toolstack_result(output: str) -> tuple[bool, str]:
    text, _, tail = output.rpartition("@@toolstack ")
    tool, _, status = tail.strip().partition(" ")
    if not tool or tool == "none":
        return False, "neither xm nor xl answers on this host"
    if status != "0":
        said = " ".join(text.split())[:200] or f"exit status {status}"
        return False, f"`{tool} info` failed: {said}"
    facts = parse_info(text, f"{tool} info").value
    version = " ".join(p for p in (facts.hypervisor or "Xen", facts.hypervisor_version) if p)
    cpus = f"{facts.cpus} CPUs" if facts.cpus else "CPUs unknown"
    return True, f"{tool}: {version}, {cpus}, {fmt.mib(facts.memory_mib)}"


# -- shared storage ----------------------------------------------------------------------------


def storage_script(path: str) -> str:
    """``stat -f`` of the path (its file system's type and space), and ``df -P`` of it (where
    that file system is mounted: ``df`` resolves a symlink such as Oracle VM's ``/OVS``)."""
    script = (
        'stat -f -c "%T %S %b %a" -- "$1" 2>&1; echo "@@path $?"; '
        'df -P -- "$1" 2>/dev/null | tail -n 1; echo "@@mount $?"'
    )
    return shlex.join(["sh", "-c", script, "sh", path])


def storage_result(path: str, where: str, output: str) -> tuple[bool, str]:
    """Mounted means: the path exists and the file system it lies on is mounted somewhere
    other than the host's ``/``. Shared storage on the root disk is no one else's, and a
    mount that failed at boot leaves just such an empty directory behind."""
    sections = _sections(output, ("path", "mount"))
    text, status = sections.get("path", ("", None))
    if status != 0:
        said = " ".join(text.split()) or "stat -f failed"
        if "No such file" in said:
            return False, f"{path} does not exist on {where}: the shared storage is not mounted"
        return False, f"{path} on {where}: {said}"
    fields = text.split()
    if len(fields) < 4:
        return False, f"{path} on {where}: unreadable `stat -f` output: {text.strip()!r}"
    kind, block, blocks, free = fields[:4]
    df_line = sections.get("mount", ("", None))[0].split()
    mount_point = " ".join(df_line[5:]) if len(df_line) >= 6 else None
    if mount_point == "/":
        return False, (
            f"{path} is on {where}'s root file system ({kind}), not on a mounted shared file "
            "system: the shared storage is not mounted there"
        )
    mounted = f" mounted on {mount_point}" if mount_point else ""
    try:
        total, available = int(block) * int(blocks), int(block) * int(free)
    except ValueError:
        return True, f"{path}: {kind}{mounted}"
    return True, f"{path}: {kind}{mounted}, {fmt.size(available)} free of {fmt.size(total)}"


# -- the pool's marker -------------------------------------------------------------------------


def marker_path(shared_storage: str) -> str:
    return f"{shared_storage.rstrip('/')}/{MARKER_NAME}"


def read_marker_script(shared_storage: str) -> str:
    script = 'if [ -e "$1" ]; then cat -- "$1"; echo "@@marker $?"; else echo "@@marker none"; fi'
    return shlex.join(["sh", "-c", script, "sh", marker_path(shared_storage)])


def write_marker_command(shared_storage: str, pool_id: str) -> str:
    """Create the marker, never over an existing one (``set -C``: another host may have
    written it meanwhile), readable by all."""
    script = 'set -C; umask 022; printf "%s\\n" "$2" > "$1"'
    return shlex.join(["sh", "-c", script, "sh", marker_path(shared_storage), pool_id])


def marker_read(output: str) -> str | None:
    """The id the marker holds; None when there is none. Raises ValueError if unreadable."""
    text, _, tail = output.rpartition("@@marker ")
    status = tail.strip()
    if status == "none":
        return None
    if status != "0":
        raise ValueError(" ".join(text.split()) or f"cat failed (status {status})")
    return text.strip()


def marker_writer(pool: PoolConfig) -> str | None:
    """The host that writes a missing marker: the pool's utility host, else its master, else
    the first host. Every other host only reads it."""
    for role in (HostRole.UTILITY, HostRole.MASTER):
        for host in pool.hosts:
            if role in host.roles:
                return host.name
    return pool.hosts[0].name if pool.hosts else None


# -- ovs-agent ---------------------------------------------------------------------------------

AGENT_SCRIPT = (
    "if command -v service >/dev/null 2>&1; then service ovs-agent status 2>&1; "
    "elif [ -x /etc/init.d/ovs-agent ]; then /etc/init.d/ovs-agent status 2>&1; "
    "else echo 'ovs-agent: unrecognized service'; (exit 1); fi; echo \"@@agent $?\""
)

_ABSENT = ("unrecognized service", "could not be found", "not-found", "no such file")


def agent_result(output: str) -> tuple[bool | None, str]:
    """Running (True), absent (None: no Oracle VM agent, nothing to check) or not running."""
    text, _, tail = output.rpartition("@@agent ")
    status = tail.strip()
    said = " ".join(text.split())[:200]
    if status == "0":
        return True, said or "running"
    if status == "127" or any(word in said.lower() for word in _ABSENT):
        return None, "no ovs-agent service on this host: not an Oracle VM server"
    return False, (
        f"ovs-agent is not running (status {status}): {said or 'no output'}; "
        "start it on the host: service ovs-agent start"
    )


# -- the clock ---------------------------------------------------------------------------------

CLOCK_COMMAND = "date +%s.%N"


def clock_result(output: str, sent_at: float, received_at: float) -> tuple[bool, str]:
    """The host's clock against this machine's, half the round trip corrected: the host
    read its clock, as near as can be known, halfway between sending and receiving."""
    text = output.strip().split()[0] if output.strip() else ""
    try:
        remote = float(text)
    except ValueError:
        try:  # `date` without %N (busybox) prints it literally
            remote = float(text.split(".")[0])
        except ValueError:
            return False, f"unreadable `{CLOCK_COMMAND}` output: {output.strip()!r}"
    skew = remote - (sent_at + received_at) / 2
    margin = (received_at - sent_at) / 2
    if abs(skew) < 0.0005:
        said = "in step with this machine"
    else:
        said = f"{abs(skew):.3f} s {'ahead of' if skew > 0 else 'behind'} this machine"
    detail = f"{said} (±{margin:.3f} s)"
    if abs(skew) > CLOCK_SKEW_LIMIT_S:
        return False, f"{detail}: more than {CLOCK_SKEW_LIMIT_S:g} s; check its NTP service"
    return True, detail


def _sections(output: str, names: tuple[str, ...]) -> dict[str, tuple[str, int | None]]:
    """Output cut at the ``@@name STATUS`` lines ending each part."""
    found: dict[str, tuple[str, int | None]] = {}
    rest = output
    for name in names:
        body, sep, tail = rest.partition(f"@@{name} ")
        if not sep:
            break
        status_text, _, rest = tail.partition("\n")
        status = int(status_text) if status_text.strip().isdigit() else None
        found[name] = (body.strip(), status)
    return found
