#!/usr/bin/env python3
"""The two-host lab: real libvirtd + QEMU hypervisors for ovmtui's end-to-end tests and demo.

    python3 lab/lab.py up        build what is missing, then start the lab (a fresh one)
    python3 lab/lab.py down      stop it; leaves no process, namespace or mount behind
    python3 lab/lab.py status    what runs
    python3 lab/lab.py build     only build: packages, libvirt-qemu user, kernel, initramfs
    python3 lab/lab.py probe     exit 0 if this machine can host the lab, else say why
    python3 lab/lab.py libvirtd {kill|start} HOST      for tests: a daemon dies, comes back
    python3 lab/lab.py virsh HOST ARGS...              virsh on a host (e.g. console vm1)
    python3 lab/lab.py reinstall HOST                  for tests: the host reinstalled, empty

Standard library only, run as root (make lab-up, the pytest fixture in tests/e2e/lab).
Everything lives under .lab/ beside this directory: cache/ (packages are checked, the kernel
and initramfs are kept: minutes the first time, seconds afterwards) and the lab itself
(hosts/, ovs/, ssh/, estate.toml), rebuilt from nothing on every `up`.

The shape of it, and why (../shared/LAB.md records the facts this builds on):

  - Each host is a network namespace (ovmlab-h1 10.200.0.1, ovmlab-h2 10.200.0.2) joined by
    a veth to a bridge in a third namespace (ovmlab-net). No interface is added to the root
    namespace: lab traffic stays inside the namespaces and on loopback.
  - Each host also has a private mount namespace, where its own directories are
    bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
    /var/log/libvirt, and a UTS namespace with its own hostname. A process that does
    nothing holds the three (start_host); the host's key-only sshd and its libvirtd join
    them, so an SSH session lands "on" the host, and a restarted libvirtd finds its state.
    The mounts die with the namespaces: nothing is ever mounted in the root one.
  - Each libvirtd has its own host_uuid (two daemons that look like one host refuse to
    migrate) and runs under lab/subreaper.py, which reaps its QEMUs at once.
  - ovmtui (root namespace) reaches each sshd through a socat forward on 127.0.0.1, with
    `qemu+ssh://root@127.0.0.1:PORT/system?socket=...&keyfile=...`; the host keys are
    verified against the lab's own known_hosts (the `command=` ssh wrapper, see
    write_ssh_wrapper: libvirt's plain ssh transport ignores `known_hosts=`).
  - Guests are tiny TCG domains (192 MiB, 1 vCPU) booting a Debian cloud kernel with a
    busybox initramfs (lab/guest-init.sh) that prints a heartbeat on the serial console.
    Their disks, boot files and console logs are in the shared directory .lab/ovs, which
    stands in for OVM's /OVS: both hosts see the same paths, as live migration needs. It has
    Oracle VM's layout: running_pool/<guest>/, seed_pool/OVM_LAB_PVM/ (a template: vm.cfg,
    the lab's kernel and initramfs, a disk), and the empty iso_pool, sharedDisk, publish_pool.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

State = dict[str, Any]  # .lab/state.json: what runs, for tear_down

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / ".lab"
CACHE = LAB / "cache"
STATE_FILE = LAB / "state.json"
ESTATE = LAB / "estate.toml"
OVS = LAB / "ovs"  # the shared directory, OVM's /OVS
SSH_DIR = LAB / "ssh"

# Packages (LAB.md): --no-install-recommends keeps it small and free of systemd.
PACKAGES = (
    "libvirt-daemon",
    "libvirt-daemon-driver-qemu",
    "libvirt-clients",
    "qemu-system-x86",
    "qemu-utils",
    "busybox-static",
    "openssh-server",
    "openssh-client",
    "netcat-openbsd",  # the remote end of libvirt's ssh transport: nc -U SOCKET
    "socat",
    "iproute2",
)
KERNEL_META = "linux-image-cloud-amd64"
# Built as modules by Debian's cloud kernel: the ACPI power button and its input device
# (graceful shutdown), virtio for hot-plugged disks.
GUEST_MODULES = ("button", "evdev", "virtio_pci", "virtio_blk")

NS_PREFIX = "ovmlab-"
NS_NET = NS_PREFIX + "net"
SUBNET = "10.200.0"
PORT_BASE = int(os.environ.get("OVMTUI_LAB_PORT_BASE", "22200"))
UUID_NS = uuid.UUID("5f0c3f4e-6a1d-4d0b-9d8e-0d7a1ab0c0de")  # stable UUIDs from names

GUEST_MEMORY_MIB = 192
BOOT_TIMEOUT_S = 120.0
DAEMON_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Host:
    name: str
    index: int
    roles: tuple[str, ...]

    @property
    def ns(self) -> str:
        return NS_PREFIX + self.name

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{self.index}"

    @property
    def port(self) -> int:
        """The socat forward to this host's sshd, on 127.0.0.1."""
        return PORT_BASE + self.index

    @property
    def dir(self) -> Path:
        return LAB / "hosts" / self.name

    @property
    def socket(self) -> Path:
        """libvirtd's socket, as seen from outside its mount namespace."""
        return self.dir / "run" / "libvirt-sock"  # run/ is its /run/libvirt

    @property
    def libvirtd_pidfile(self) -> Path:
        return self.dir / "libvirtd.pid"

    def libvirtd_pid(self) -> int | None:
        """libvirtd's own PID while it runs (from its pid file)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.libvirtd_pidfile.read_text().strip())
            if alive(pid):
                return pid
        return None

    def private_dir(self, sub: str) -> Path:
        """What this host's libvirtd sees as one of PRIVATE_DIRS. The cache (QEMU's probed
        capabilities: seconds to redo) is kept across runs; the rest is fresh every time."""
        if sub == "cache":
            return CACHE / f"libvirt-{self.name}"
        return self.dir / sub

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(UUID_NS, "host " + self.name))

    @property
    def local_uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def ssh_uri(self) -> str:
        return (
            # socket= as the host sees it: its own /run/libvirt (see start_host).
            f"qemu+ssh://root@127.0.0.1:{self.port}/system?socket=/run/libvirt/libvirt-sock"
            f"&keyfile={SSH_DIR / 'id_ed25519'}&command={SSH_DIR / 'ssh'}"
            # Ignored by libvirt's ssh transport; read by ovmtui's connection test (its own
            # SSH checks of a qemu+ssh host), which must check the lab's keys too.
            f"&known_hosts={SSH_DIR / 'known_hosts'}"
        )


HOSTS = (Host("h1", 1, ("master", "utility", "vm")), Host("h2", 2, ("vm",)))
GUESTS = (("vm1", "h1"), ("vm2", "h1"), ("vm3", "h2"))
# Oracle VM's layout of the shared storage (running_pool holds the guests).
LAYOUT_FOLDERS = ("running_pool", "seed_pool", "iso_pool", "sharedDisk", "publish_pool")
TEMPLATE = "OVM_LAB_PVM"  # seed_pool's one template

# What each libvirtd gets privately: (directory under .lab/hosts/NAME, where it is mounted).
PRIVATE_DIRS = (
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
)


def host_named(name: str) -> Host:
    for host in HOSTS:
        if host.name == name:
            return host
    raise SystemExit(f"lab: no host {name!r} (hosts: {', '.join(h.name for h in HOSTS)})")


# --------------------------------------------------------------------------- helpers


def say(text: str) -> None:
    print(f"lab: {text}", flush=True)


def run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in cmd]
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        result = subprocess.CompletedProcess(args, 124, "", f"timed out after {exc.timeout:g} s")
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise SystemExit(f"lab: {' '.join(args)} failed ({result.returncode}): {detail}")
    return result


def ns_run(ns: str, cmd: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *cmd])


def spawn(cmd: Sequence[str | Path], log: Path) -> int:
    """A daemon of the lab: its own session (no terminal, signals by group), output to a
    file. Never to our pipes: whoever runs `lab up` (make, pytest) would wait for their EOF."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def wait_for(
    what: str,
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.2,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = (
                    "\n--- "
                    + str(log)
                    + "\n"
                    + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                )
            raise SystemExit(f"lab: timed out after {timeout:g} s waiting for {what}{tail}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (it is our own child, reaped when we exit).
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def load_state() -> State:
    try:
        state: State = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return state


def save_state(state: State) -> None:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE_FILE)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One lab command at a time: a demo's `up` must not tear down a test run's lab halfway."""
    LAB.mkdir(parents=True, exist_ok=True)
    with open(LAB / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def is_mountpoint(path: str) -> bool:
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == path for line in mounts)


def namespaces() -> list[str]:
    result = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- probe


def probe() -> str | None:
    """Why this machine cannot host the lab, or None when it can."""
    if os.geteuid() != 0:
        return "not root (the lab needs network namespaces, mounts and daemons as root)"
    if sys.platform != "linux":
        return "not Linux"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    name = f"{NS_PREFIX}probe{os.getpid()}"
    found = run_netns_state()
    try:
        result = run(["ip", "netns", "add", name], check=False)
        if result.returncode != 0:
            return f"`ip netns add` failed: {result.stderr.strip()}"
        result = run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=False)
        if result.returncode != 0:
            return f"`ip netns exec` failed: {result.stderr.strip()}"
        return None
    finally:
        run(["ip", "netns", "delete", name], check=False)
        restore_run_netns(found)


def run_netns_state() -> str:
    if is_mountpoint("/run/netns"):
        return "mount"
    return "dir" if os.path.isdir("/run/netns") else "absent"


def restore_run_netns(found: str) -> None:
    """`ip netns add` makes /run/netns (a directory, then a mount point of itself) the first
    time, and leaves the directory even when it fails. Once no namespace is left in it, put
    it back as it was found, so that the lab leaves the mount table and /run as found."""
    with contextlib.suppress(OSError):
        if os.listdir("/run/netns"):
            return  # someone's namespaces: leave them be
        if found != "mount" and is_mountpoint("/run/netns"):
            run(["umount", "/run/netns"], check=False)
        if found == "absent":
            os.rmdir("/run/netns")


# --------------------------------------------------------------------------- build


_apt_updated = False


def apt_update() -> None:
    global _apt_updated
    if not _apt_updated:
        say("apt-get update")
        run(["apt-get", "update", "-qq"], timeout=300)
        _apt_updated = True


def installed(packages: Sequence[str]) -> set[str]:
    result = run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages], check=False
    )
    return {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}


def ensure_packages() -> None:
    missing = [p for p in PACKAGES if p not in installed(PACKAGES)]
    if not missing:
        return
    apt_update()
    say(f"installing {len(missing)} packages: {' '.join(missing)}")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    run(
        [*env_cmd, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        timeout=600,
    )


def ensure_qemu_user() -> None:
    # The qemu driver refuses to load without it, even though qemu.conf runs guests as root.
    if run(["getent", "group", "libvirt-qemu"], check=False).returncode != 0:
        run(["groupadd", "-r", "libvirt-qemu"])
    if run(["getent", "passwd", "libvirt-qemu"], check=False).returncode != 0:
        say("creating the libvirt-qemu user")
        run(
            [
                "useradd",
                "-r",
                "-g",
                "libvirt-qemu",
                "-d",
                "/var/lib/libvirt",
                "-s",
                "/usr/sbin/nologin",
                "libvirt-qemu",
            ]
        )


def ensure_root_key_login() -> None:
    """The lab's sshd runs without PAM, and OpenSSH without PAM refuses a locked account
    ('!' in /etc/shadow) even for key logins. '*' is not locked and still matches no
    password: root can then log in with a key, never with a password."""
    with contextlib.suppress(OSError):
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "root" and fields[1].startswith("!"):
                say("root's password is locked ('!'): setting it to '*' for key logins")
                run(["usermod", "-p", "*", "root"])


def kernel_dir() -> Path:
    return CACHE / "kernel"


def ensure_kernel() -> Path:
    """A Debian cloud kernel and the few modules the guests load, extracted from its .deb
    (apt-get download + dpkg-deb -x: nothing is installed, /boot is not touched)."""
    target = kernel_dir()
    if (target / "vmlinuz").exists() and (target / "modules" / "load-order").exists():
        return target
    package = None
    for attempt in range(2):
        result = run(["apt-cache", "depends", KERNEL_META], check=False)
        found = re.search(r"Depends: (linux-image-\S+-cloud-amd64)", result.stdout)
        if found:
            package = found.group(1)
            break
        if attempt == 0:
            apt_update()
    if package is None:
        raise SystemExit(f"lab: cannot resolve {KERNEL_META} (apt-cache depends)")
    say(f"fetching the guest kernel: {package}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp_name:
        tmp = Path(tmp_name)
        result = run(["apt-get", "download", package], cwd=tmp, timeout=600, check=False)
        if result.returncode != 0:
            apt_update()
            run(["apt-get", "download", package], cwd=tmp, timeout=600)
        debs = list(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise SystemExit(f"lab: apt-get download left {debs}")
        tree = tmp / "tree"
        run(["dpkg-deb", "-x", debs[0], tree], timeout=300)
        vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
        version = vmlinuz.name.removeprefix("vmlinuz-")
        staged = tmp / "kernel"
        (staged / "modules").mkdir(parents=True)
        shutil.copyfile(vmlinuz, staged / "vmlinuz")
        shutil.copyfile(tree / "boot" / f"config-{version}", staged / "config")
        (staged / "version").write_text(version + "\n")
        order = copy_modules(tree / "lib" / "modules" / version, staged / "modules")
        (staged / "modules" / "load-order").write_text("".join(f"{m}\n" for m in order))
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
    return target


def copy_modules(moddir: Path, dest: Path) -> list[str]:
    """GUEST_MODULES that this kernel builds as modules, dependencies first, as plain .ko
    files (what busybox insmod reads). The .deb has no modules.dep (depmod makes it at
    install time), so the dependencies come from each module's own modinfo."""
    paths = {module_name(str(p)): p for p in (moddir / "kernel").rglob("*.ko*")}
    order: list[str] = []
    blobs: dict[str, bytes] = {}

    def add(name: str) -> None:
        if name in order or name not in paths:
            return  # done, or built in
        source = paths[name]
        data = source.read_bytes()
        if source.name.endswith(".ko.xz"):
            data = lzma.decompress(data)
        elif not source.name.endswith(".ko"):
            raise SystemExit(f"lab: cannot decompress {source}")
        found = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
        for dep in found.group(1).decode().split(",") if found else []:
            if dep:
                add(dep.replace("-", "_"))
        blobs[name] = data
        order.append(name)

    for name in GUEST_MODULES:
        add(name)
    for name in order:
        (dest / f"{name}.ko").write_bytes(blobs[name])
    return [f"{name}.ko" for name in order]


def module_name(path: str) -> str:
    base = Path(path).name
    return base.split(".ko")[0].replace("-", "_")


def initramfs_inputs(kernel: Path) -> list[tuple[str, Path]]:
    busybox = Path("/bin/busybox")
    inputs = [("init", ROOT / "lab" / "guest-init.sh"), ("bin/busybox", busybox)]
    for line in (kernel / "modules" / "load-order").read_text().split():
        inputs.append((f"lib/modules/{line}", kernel / "modules" / line))
    inputs.append(("lib/modules/load-order", kernel / "modules" / "load-order"))
    return inputs


def ensure_initramfs(kernel: Path) -> Path:
    """The guests' initramfs: busybox-static, lab/guest-init.sh as /init and the modules.
    Rebuilt whenever one of those changes."""
    target = CACHE / "initrd.img"
    inputs = initramfs_inputs(kernel)
    digest = hashlib.sha256()
    for name, path in inputs:
        digest.update(name.encode() + b"\0" + path.read_bytes())
    stamp = CACHE / "initrd.sha256"
    if target.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return target
    say("packing the guest initramfs")
    dirs = ["bin", "dev", "lib", "lib/modules", "proc", "sys", "tmp", "root"]
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = []
    entries += [(d, 0o040755, b"", (0, 0)) for d in dirs]
    # The kernel opens /dev/console for init's stdio before anything is mounted: it must be
    # in the archive. Writing the archive ourselves needs no mknod (nor the cpio tool).
    entries.append(("dev/console", 0o020600, b"", (5, 1)))
    for name, path in inputs:
        mode = 0o100755 if name in ("init", "bin/busybox") else 0o100644
        entries.append((name, mode, path.read_bytes(), (0, 0)))
    tmp = target.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as out:
        out.write(cpio_newc(entries))
    tmp.replace(target)
    stamp.write_text(digest.hexdigest())
    return target


def cpio_newc(entries: Sequence[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """An archive in the "newc" format the kernel unpacks into its initramfs."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, (major, minor)) in enumerate(
        [*entries, ("TRAILER!!!", 0, b"", (0, 0))], 1
    ):
        encoded = name.encode() + b"\0"
        nlink = 2 if mode & 0o040000 else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(encoded), 0)
        out.extend(b"070701" + "".join(f"{v:08X}" for v in fields).encode() + encoded)
        pad()
        out.extend(data)
        pad()
    return bytes(out)


def build() -> Path:
    """Everything kept between runs; returns the kernel directory."""
    CACHE.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    ensure_qemu_user()
    ensure_root_key_login()
    kernel = ensure_kernel()
    ensure_initramfs(kernel)
    return kernel


# --------------------------------------------------------------------------- configuration


def write_ssh_files() -> None:
    """A client key for root on both hosts, one host key per host, and the lab's known_hosts.
    Fresh on every `up`; the keys are ed25519 (generated in milliseconds)."""
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(SSH_DIR, 0o700)
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "ovmtui-lab",
            "-f",
            SSH_DIR / "id_ed25519",
        ]
    )
    shutil.copyfile(SSH_DIR / "id_ed25519.pub", SSH_DIR / "authorized_keys")
    known = []
    for host in HOSTS:
        keyfile = host.dir / "ssh" / "ssh_host_ed25519_key"
        keyfile.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", keyfile])
        public = keyfile.with_suffix(".pub").read_text().split()
        known.append(f"[127.0.0.1]:{host.port} {public[0]} {public[1]}\n")
        (host.dir / "sshd_config").write_text(
            f"""# sshd of lab host {host.name}, in network namespace {host.ns} (lab/lab.py)
ListenAddress {host.ip}
Port 22
HostKey {keyfile}
PidFile {host.dir / "sshd.pid"}
AuthorizedKeysFile {SSH_DIR / "authorized_keys"}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files live in the checkout, whose directories may be group-writable.
StrictModes no
# libvirt keeps one connection per host open; several tools at once need more sessions.
MaxSessions 50
MaxStartups 50
PrintMotd no
"""
        )
    (SSH_DIR / "known_hosts").write_text("".join(known))
    write_ssh_wrapper()


def write_ssh_wrapper() -> None:
    """The `command=` of the lab's URIs: ssh pinned to the lab's known_hosts.

    libvirt's ssh transport runs the ssh binary with no way to name a known_hosts file
    (`known_hosts=` is only read by the libssh/libssh2 transports), so it would check the
    user's ~/.ssh/known_hosts. Strict checking against our own file keeps host keys
    verified without touching anyone's home directory."""
    wrapper = SSH_DIR / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# ssh for the lab's libvirt URIs: host keys checked against the lab's own file.\n"
        f"exec ssh -F none -o UserKnownHostsFile={SSH_DIR / 'known_hosts'} "
        "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
        '-o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 "$@"\n'
    )
    wrapper.chmod(0o755)


def write_libvirt_config(host: Host) -> None:
    for sub, _target in PRIVATE_DIRS:
        host.private_dir(sub).mkdir(parents=True, exist_ok=True)
    etc = host.dir / "etc"
    (etc / "libvirtd.conf").write_text(
        f"""# libvirtd of lab host {host.name} (lab/lab.py); its mount namespace sees this
# directory as /etc/libvirt.
host_uuid = "{host.uuid}"
unix_sock_dir = "/run/libvirt"
unix_sock_rw_perms = "0700"
# No polkit here: root's own socket, reachable only by root.
auth_unix_ro = "none"
auth_unix_rw = "none"
# Reachable only inside the lab's namespaces: for peer-to-peer migration between hosts.
listen_tls = 0
listen_tcp = 1
listen_addr = "{host.ip}"
auth_tcp = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""
    )
    (etc / "qemu.conf").write_text(
        f"""# qemu driver of lab host {host.name} (lab/lab.py). Why each line: ../shared/LAB.md.
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
remember_owner = 0
# No virtlogd daemon: QEMU writes its own log files.
stdio_handler = "file"
# Never touch the machine's cgroups: nothing to leave behind there.
cgroup_controllers = [ ]
migration_address = "{host.ip}"
migration_host = "{host.ip}"
"""
    )


def guest_xml(name: str, kernel: Path) -> str:
    home = OVS / "running_pool" / name
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid.uuid5(UUID_NS, "guest " + name)}</uuid>
  <description>ovmtui lab guest (lab/lab.py)</description>
  <memory unit='MiB'>{GUEST_MEMORY_MIB}</memory>
  <currentMemory unit='MiB'>{GUEST_MEMORY_MIB}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{home / "vmlinuz"}</kernel>
    <initrd>{home / "initrd.img"}</initrd>
    <cmdline>console=ttyS0 quiet loglevel=3 ovmlab.name={name}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{home / "System.img"}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='pty'>
      <log file='{home / "console.log"}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def prepare_guests(kernel: Path) -> None:
    for name, _host in GUESTS:
        home = OVS / "running_pool" / name
        home.mkdir(parents=True, exist_ok=True)
        # Hard links: one copy of the kernel on disk however many guests.
        os.link(kernel / "vmlinuz", home / "vmlinuz")
        os.link(CACHE / "initrd.img", home / "initrd.img")
        with open(home / "System.img", "wb") as disk:
            disk.truncate(64 * 1024 * 1024)  # sparse: an empty disk costs nothing
        (home / "vm.xml").write_text(guest_xml(name, kernel))
    # The shared disk of the pool: hot-attached to several guests at once.
    (OVS / "shared_disks").mkdir(parents=True, exist_ok=True)
    with open(OVS / "shared_disks" / "shared.img", "wb") as disk:
        disk.truncate(32 * 1024 * 1024)
    prepare_layout(kernel)


def template_vm_cfg(name: str) -> str:
    """The seeded template's vm.cfg, as Oracle VM's paravirtualised templates have one."""
    home = OVS / "seed_pool" / name
    return (
        f"# ovmtui lab template (lab/lab.py): the lab's kernel and initramfs\n"
        f"name = '{name}'\n"
        f"memory = '{GUEST_MEMORY_MIB}'\n"
        "vcpus = 1\n"
        f"kernel = '{home / 'vmlinuz'}'\n"
        f"ramdisk = '{home / 'initrd.img'}'\n"
        f"extra = 'console=ttyS0 ovmlab.name={name}'\n"
        f"disk = ['file:{home / 'System.img'},xvda,w']\n"
        "vif = ['bridge=xenbr0']\n"
        "on_crash = 'restart'\n"
        "on_reboot = 'restart'\n"
    )


def prepare_layout(kernel: Path) -> None:
    """The rest of Oracle VM's /OVS layout beside running_pool: seed_pool with one template
    made from the lab's kernel and initramfs, and the empty iso_pool, sharedDisk and
    publish_pool (the storage screen and the issue-16 lab test work on them)."""
    for folder in LAYOUT_FOLDERS:
        (OVS / folder).mkdir(parents=True, exist_ok=True)
    home = OVS / "seed_pool" / TEMPLATE
    home.mkdir()
    os.link(kernel / "vmlinuz", home / "vmlinuz")
    os.link(CACHE / "initrd.img", home / "initrd.img")
    with open(home / "System.img", "wb") as disk:
        disk.truncate(16 * 1024 * 1024)
    (home / "vm.cfg").write_text(template_vm_cfg(TEMPLATE))


def write_estate() -> None:
    lines = [
        "# The lab's estate (lab/lab.py up writes it; every `up` rewrites it).",
        "# Hosts are reached over SSH through 127.0.0.1 forwards; host keys are checked",
        f"# against {SSH_DIR / 'known_hosts'}.",
        'repository = "repository.sqlite"',
        "",
        "[[pools]]",
        'name = "lab"',
        f'shared_storage = "{OVS}"',
    ]
    for host in HOSTS:
        roles = ", ".join(f'"{r}"' for r in host.roles)
        lines += [
            "",
            "[[pools.hosts]]",
            f'name = "{host.name}"',
            f'libvirt = "{host.ssh_uri}"',
            f"roles = [{roles}]",
        ]
    ESTATE.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- start


def make_network() -> None:
    run(["ip", "netns", "add", NS_NET])
    ns_run(NS_NET, ["ip", "link", "set", "lo", "up"])
    ns_run(NS_NET, ["ip", "link", "add", "br0", "type", "bridge"])
    ns_run(NS_NET, ["ip", "link", "set", "br0", "up"])
    for host in HOSTS:
        run(["ip", "netns", "add", host.ns])
        # Created inside the bridge's namespace and moved straight into the host's:
        # the root namespace never sees either end.
        port = f"v-{host.name}"
        ns_run(
            NS_NET,
            ["ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host.ns],
        )
        ns_run(NS_NET, ["ip", "link", "set", port, "master", "br0", "up"])
        ns_run(host.ns, ["ip", "link", "set", "lo", "up"])
        ns_run(host.ns, ["ip", "addr", "add", f"{host.ip}/24", "dev", "eth0"])
        ns_run(host.ns, ["ip", "link", "set", "eth0", "up"])


def start_host(host: Host, state: State) -> None:
    """The host itself: a process that only holds its namespaces. Network (the host's),
    mount (private: the host's own libvirt directories are bind-mounted over the system's)
    and UTS (its hostname). sshd and libvirtd join all three (nsenter), so an SSH session
    lands on the host as it would on a real one: its hostname, its /run/libvirt (plain
    `virsh` there talks to the host's libvirtd), and a libvirtd restarted after a crash
    finds the same directories. The mounts live and die with these namespaces: nothing is
    ever mounted in the root one."""
    ready = host.dir / "namespaces-ready"
    mounts = "\n".join(
        f"mkdir -p {target} && mount --bind {host.private_dir(sub)} {target}"
        for sub, target in PRIVATE_DIRS
    )
    # The shared directory is mounted on each host, as a pool's NFS or OCFS2 storage is: a
    # connection test finds it mounted (not on the host's root file system).
    mounts += f"\nmount --bind {shlex.quote(str(OVS))} {shlex.quote(str(OVS))}"
    script = f"""set -e
{mounts}
hostname {host.name}
touch {ready}
exec sleep infinity
"""
    # The mount points must exist; those the packages did not make are removed by tear_down.
    created = state.setdefault("created_dirs", [])
    for _sub, target in PRIVATE_DIRS:
        if not os.path.isdir(target) and target not in created:
            created.append(target)
    # ip netns exec, unshare (without --fork) and exec keep one PID: we record the holder's.
    pid = spawn(
        [
            "ip",
            "netns",
            "exec",
            host.ns,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
        host.dir / "host.log",
    )
    state["pids"][f"host-{host.name}"] = pid
    save_state(state)
    wait_for(f"the namespaces of {host.name}", ready.exists, 10, 0.02, log=host.dir / "host.log")


def on_host(host: Host, state: State) -> list[str]:
    """The command prefix that runs a program on the host (in its namespaces)."""
    holder = state["pids"][f"host-{host.name}"]
    return ["nsenter", "-t", str(holder), "--net", "--mount", "--uts", "--"]


def start_sshd(host: Host, state: State) -> None:
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    pid = spawn(
        [*on_host(host, state), "/usr/sbin/sshd", "-D", "-e", "-f", host.dir / "sshd_config"],
        host.dir / "sshd.log",
    )
    state["pids"][f"sshd-{host.name}"] = pid


def start_forward(host: Host, state: State) -> None:
    """127.0.0.1:PORT in the root namespace -> HOST-IP:22 inside the host's namespace.
    Each connection gets its own `ip netns exec ... socat` on the far side."""
    pid = spawn(
        [
            "socat",
            f"TCP-LISTEN:{host.port},bind=127.0.0.1,reuseaddr,fork",
            # Colons escaped: socat would read them as its own address separators.
            f"EXEC:ip netns exec {host.ns} socat STDIO TCP\\:{host.ip}\\:22",
        ],
        host.dir / "forward.log",
    )
    state["pids"][f"socat-{host.name}"] = pid


def start_libvirtd(host: Host, state: State) -> int:
    """libvirtd on the host, under lab/subreaper.py (why: see there). Returns at once;
    wait_libvirtd() waits for it to answer. The PID recorded is the subreaper's, whose
    process group libvirtd shares; libvirtd's own is in its --pid-file.

    Its own --pid-file: libvirtd's default is /run/libvirtd.pid, outside the private
    /run/libvirt, where the two daemons would lock each other out."""
    host.libvirtd_pidfile.unlink(missing_ok=True)
    pid = spawn(
        [
            *on_host(host, state),
            sys.executable,
            ROOT / "lab" / "subreaper.py",
            "libvirtd",
            "-f",
            host.dir / "etc" / "libvirtd.conf",
            "--pid-file",
            host.libvirtd_pidfile,
            "--listen",
        ],
        host.dir / "libvirtd.out",
    )
    state["pids"][f"libvirtd-{host.name}"] = pid
    save_state(state)
    return pid


def wait_libvirtd(host: Host, pid: int) -> None:
    def answers() -> bool:
        if not alive(pid):
            raise SystemExit(
                f"lab: libvirtd of {host.name} exited; see {host.dir / 'libvirtd.out'} and "
                f"{host.private_dir('log') / 'libvirtd.log'}"
            )
        # The first answer waits for the qemu driver to probe QEMU (seconds, once: the
        # result is cached in .lab/cache/libvirt-HOST across runs).
        return virsh(host, "version", check=False, timeout=20).returncode == 0

    wait_for(f"libvirtd of {host.name}", answers, DAEMON_TIMEOUT_S, log=host.dir / "libvirtd.out")


def virsh(
    host: Host, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return run(["virsh", "-q", "-c", host.local_uri, *args], check=check, timeout=timeout)


def check_paths() -> None:
    for host in HOSTS:
        if len(str(host.socket)) > 100:
            raise SystemExit(
                f"lab: {host.socket} is too long for a unix socket path (108 bytes): "
                "move the checkout to a shorter path"
            )


def up() -> None:
    """A fresh lab: whatever ran before is torn down first, then everything is started anew
    (the caches are kept). If anything fails, what was started is torn down again."""
    started = time.monotonic()
    tear_down(quiet=True)
    kernel = build()
    built = time.monotonic()
    try:
        start(kernel)
    except BaseException:
        print("lab: up failed; tearing down (logs stay in .lab/hosts/)", file=sys.stderr)
        tear_down(quiet=True)
        raise
    say(
        f"up in {time.monotonic() - started:.1f} s (build {built - started:.1f} s): "
        f"{len(HOSTS)} hosts, {len(GUESTS)} guests; estate: {ESTATE}"
    )


def start(kernel: Path) -> None:
    check_paths()
    for path in (LAB / "hosts", OVS, SSH_DIR):
        shutil.rmtree(path, ignore_errors=True)
    for path in LAB.glob("repository.sqlite*"):
        path.unlink()
    ESTATE.unlink(missing_ok=True)
    state: State = {"pids": {}, "run_netns_found": run_netns_state()}
    save_state(state)
    write_ssh_files()
    for host in HOSTS:
        write_libvirt_config(host)
    prepare_guests(kernel)
    make_network()
    state["netns_inodes"] = [os.stat(f"/run/netns/{ns}").st_ino for ns in lab_namespaces()]
    save_state(state)
    for host in HOSTS:
        start_host(host, state)
        start_sshd(host, state)
        start_forward(host, state)
    daemons = [(host, start_libvirtd(host, state)) for host in HOSTS]
    for host, pid in daemons:
        wait_libvirtd(host, pid)
    for name, host_name in GUESTS:
        host = host_named(host_name)
        virsh(host, "define", str(OVS / "running_pool" / name / "vm.xml"))
        virsh(host, "start", name)
    write_estate()
    # Through the estate's own URIs: ssh, host key checked, key login, socket=.
    for host in HOSTS:
        wait_for(
            f"libvirt over ssh to {host.name}",
            functools.partial(answers_over_ssh, host),
            DAEMON_TIMEOUT_S,
            interval=0.5,
            log=host.dir / "sshd.log",
        )
    for name, _host in GUESTS:
        log = OVS / "running_pool" / name / "console.log"
        wait_for(
            f"{name} to boot (its heartbeat in {log})",
            functools.partial(booted, name),
            BOOT_TIMEOUT_S,
            interval=0.25,
            log=log,
        )


def answers_over_ssh(host: Host) -> bool:
    command = ["virsh", "-q", "-c", host.ssh_uri, "list", "--name"]
    return run(command, check=False, timeout=15).returncode == 0


def booted(guest: str) -> bool:
    """The guest's first heartbeat is in its console log: /init has run, the power button
    is watched (a shutdown works), the shell is on the console."""
    log = OVS / "running_pool" / guest / "console.log"
    return log.exists() and f"{guest} heartbeat 1" in log.read_text(errors="replace")


# --------------------------------------------------------------------------- stop


def lab_namespaces() -> list[str]:
    return [ns for ns in namespaces() if ns.startswith(NS_PREFIX)]


def kill_all(pids: Sequence[int], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after grace_s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        if not any(alive(p) for p in pids):
            return


def process_table() -> Iterator[tuple[int, str, int | None]]:
    """(pid, command line, network namespace inode) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            netns = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue
        yield int(entry.name), cmdline.strip(), netns


def strays(state: State) -> list[tuple[int, str]]:
    """Processes of the lab still alive: inside one of its network namespaces (even one
    already deleted), or a forward of it, or anything run from .lab/ (qemu, libvirtd)."""
    inodes = set(state.get("netns_inodes", []))
    for ns in lab_namespaces():
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
    me = os.getpid()
    found = []
    for pid, cmdline, netns in process_table():
        if pid == me or not cmdline:
            continue
        program = Path(cmdline.split()[0]).name
        ours = (
            netns in inodes
            or (program == "socat" and f"netns exec {NS_PREFIX}" in cmdline)
            or str(ROOT / "lab" / "subreaper.py") in cmdline
            or (
                program in ("qemu-system-x86_64", "libvirtd", "sshd", "nc", "sh")
                and str(LAB) in cmdline
            )
        )
        if ours and alive(pid):
            found.append((pid, cmdline))
    return found


def tear_down(*, quiet: bool = False) -> list[str]:
    """Stop everything of the lab, this run's or a crashed one's. Returns what is left."""
    state = load_state()
    leftovers = lab_namespaces()
    if not state and not leftovers and not strays(state):
        return check_clean(state)
    if not quiet:
        say("tearing down")
    # 1. Guests first: QEMU outlives libvirtd, and a daemon being stopped no longer kills them.
    #    All at once: each destroy waits for its QEMU to be gone.
    destroys = []
    for host in HOSTS:
        if host.libvirtd_pid() is not None and host.socket.exists():
            result = virsh(host, "list", "--name", check=False, timeout=10)
            destroys += [
                subprocess.Popen(
                    ["virsh", "-q", "-c", host.local_uri, "destroy", name],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name in result.stdout.split()
            ]
    for proc in destroys:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # what it was destroying is killed in step 3
            proc.wait()
    # 2. The daemons we started, by the PIDs we recorded (their groups: socat's children).
    pids = [p for p in state.get("pids", {}).values() if alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    kill_all(pids)
    # 3. Whatever still runs in the namespaces (sessions, a qemu whose daemon was killed),
    #    and stray forwards of a run whose state file is gone.
    kill_all([pid for pid, _cmd in strays(state)])
    # 4. The namespaces: veths and bridge go with them.
    for ns in lab_namespaces():
        run(["ip", "netns", "delete", ns], check=False)
    if "run_netns_found" in state:
        restore_run_netns(state["run_netns_found"])
    for path in state.get("created_dirs", []):
        with contextlib.suppress(OSError):
            os.rmdir(path)  # only if still empty
    left = check_clean(state)
    if not left:
        STATE_FILE.unlink(missing_ok=True)
    return left


def check_clean(state: State) -> list[str]:
    """What the lab left behind: processes, namespaces, mounts. Empty when clean."""
    left = [f"process {pid}: {cmd}" for pid, cmd in strays(state)]
    left += [f"network namespace {ns}" for ns in lab_namespaces()]
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if (
                str(LAB) in fields[3]
                or str(LAB) in fields[4]
                or f"/run/netns/{NS_PREFIX}" in fields[4]
            ):
                left.append(f"mount {fields[4]} ({fields[3]})")
    return left


def down() -> int:
    started = time.monotonic()
    left = tear_down()
    if left:
        print("lab: left behind:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    say(f"down in {time.monotonic() - started:.1f} s: no process, namespace or mount left")
    return 0


# --------------------------------------------------------------------------- for tests


def libvirtd_kill(host: Host) -> None:
    """SIGKILL the host's libvirtd, as a crash would: its guests keep running."""
    pid = host.libvirtd_pid()
    if pid is None:
        raise SystemExit(f"lab: libvirtd of {host.name} is not running")
    os.kill(pid, signal.SIGKILL)
    wait_for(f"libvirtd of {host.name} to die", lambda: not alive(pid), 10, 0.02)


def libvirtd_start(host: Host) -> None:
    pid = host.libvirtd_pid()
    if pid is not None:
        raise SystemExit(f"lab: libvirtd of {host.name} is already running ({pid})")
    state = load_state()
    wait_libvirtd(host, start_libvirtd(host, state))


def reinstall(host: Host) -> None:
    """The host as after a reinstall: its guests stopped (a reinstall reboots it), its
    libvirtd stopped, every definition it held removed (domains, networks, storage pools,
    their autostart links, and the state libvirt keeps of them under /run/libvirt and
    /var/lib/libvirt), then libvirtd started again: an empty hypervisor. The daemon's own
    configuration (libvirtd.conf, qemu.conf: the host's setup, not definitions) stays, and
    so do the guests' disks in the shared storage."""
    if host.libvirtd_pid() is not None:
        running = virsh(host, "list", "--name", check=False, timeout=30).stdout.split()
        for name in running:
            virsh(host, "destroy", name, check=False, timeout=30)
        libvirtd_kill(host)
    etc = host.private_dir("etc")
    for child in etc.iterdir():
        if child.name in ("libvirtd.conf", "qemu.conf"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for sub in ("run", "lib"):
        for child in host.private_dir(sub).iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    libvirtd_start(host)


def status() -> int:
    state = load_state()
    if not lab_namespaces():
        say("down")
        return 1
    for host in HOSTS:
        pids = state.get("pids", {})
        daemons = ", ".join(
            f"{kind} {'up' if alive(pids.get(f'{kind}-{host.name}', 0) or -1) else 'DOWN'}"
            for kind in ("sshd", "socat")
        )
        daemons += f", libvirtd {'up' if host.libvirtd_pid() else 'DOWN'}"
        print(f"{host.name} ({host.ns}, {host.ip}, ssh via 127.0.0.1:{host.port}): {daemons}")
        result = virsh(host, "list", "--all", check=False, timeout=10)
        for line in result.stdout.strip().splitlines():
            print(f"    {line.strip()}")
    print(f"estate: {ESTATE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "status", "build", "probe"):
        sub.add_parser(name)
    daemon = sub.add_parser("libvirtd")
    daemon.add_argument("what", choices=["kill", "start"])
    daemon.add_argument("host")
    fresh = sub.add_parser("reinstall")
    fresh.add_argument("host")
    shell = sub.add_parser("virsh")
    shell.add_argument("host")
    shell.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "probe":
        reason = probe()
        print(reason or "ok")
        return 0 if reason is None else 1
    reason = probe() if args.command in ("up", "build") else None
    if reason is not None:
        print(f"lab: this machine cannot host the lab: {reason}", file=sys.stderr)
        return 2
    if args.command == "virsh":
        host = host_named(args.host)
        return subprocess.call(["virsh", "-c", host.local_uri, *args.args])
    with locked():
        if args.command == "up":
            up()
            return 0
        if args.command == "down":
            return down()
        if args.command == "build":
            build()
            return 0
        if args.command == "status":
            return status()
        if args.command == "reinstall":
            reinstall(host_named(args.host))
            return 0
        if args.command == "libvirtd":
            host = host_named(args.host)
            if args.what == "kill":
                libvirtd_kill(host)
            else:
                libvirtd_start(host)
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
