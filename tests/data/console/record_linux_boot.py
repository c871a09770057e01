"""Record a real Linux boot on a serial console into linux-boot.log (see README.md here).

    make lab-up
    .venv/bin/python tests/data/console/record_linux_boot.py [OUTPUT]

Runs on the lab's host h1 (as root, like the lab): a transient guest like the lab's own
(lab/lab.py guest_xml) but with a verbose kernel command line, created paused; its console
stream is opened before it is resumed, so the log holds every byte from the first one. It
records for RECORD_S (the banner comes ~3 s after the resume, then a heartbeat a second),
then destroys the guest. Not a test: a
recorder, kept so that the log can be made again (another kernel, another guest).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import libvirt

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "lab"))
import lab  # noqa: E402  (lab/lab.py: the lab's own paths and guest definition)

NAME = "boot"
# The lab's guests boot with `quiet loglevel=3`; the recording wants the whole kernel log.
CMDLINE = f"console=ttyS0 loglevel=7 ovmlab.name={NAME}"
RECORD_S = 15.0
HEARTBEATS = 5  # at least this many, or the recording is refused


def guest_xml(home: Path) -> str:
    xml = lab.guest_xml(NAME, lab.kernel_dir())
    quiet = f"console=ttyS0 quiet loglevel=3 ovmlab.name={NAME}"
    if quiet not in xml:
        raise SystemExit("lab.guest_xml changed its command line: update this recorder")
    return xml.replace(quiet, CMDLINE)


def prepare(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    for name, source in (
        ("vmlinuz", lab.kernel_dir() / "vmlinuz"),
        ("initrd.img", lab.CACHE / "initrd.img"),
    ):
        (home / name).unlink(missing_ok=True)
        os.link(source, home / name)
    with open(home / "System.img", "wb") as disk:
        disk.truncate(64 * 1024 * 1024)


def record(output: Path) -> None:
    host = lab.host_named("h1")
    home = lab.OVS / "running_pool" / NAME
    prepare(home)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=_event_loop, daemon=True).start()
    conn = libvirt.open(host.local_uri)
    chunks: list[bytes] = []
    done = threading.Event()

    def readable(stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            done.set()
        while True:
            try:
                data = stream.recv(65536)
            except libvirt.libvirtError:
                done.set()
                return
            if data == -2:  # nothing more for now
                return
            if not data:
                done.set()
                return
            chunks.append(data)

    dom = conn.createXML(guest_xml(home), libvirt.VIR_DOMAIN_START_PAUSED)
    try:
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_SAFE)
        stream.eventAddCallback(
            libvirt.VIR_STREAM_EVENT_READABLE
            | libvirt.VIR_STREAM_EVENT_ERROR
            | libvirt.VIR_STREAM_EVENT_HANGUP,
            readable,
            None,
        )
        started = time.monotonic()
        dom.resume()
        ended = done.wait(RECORD_S)
        elapsed = time.monotonic() - started
        stream.eventRemoveCallback()
        stream.abort()
    finally:
        dom.destroy()
        conn.close()
    data = b"".join(chunks)
    if ended or f"{NAME} heartbeat {HEARTBEATS}\r\n".encode() not in data:
        raise SystemExit(f"the console ended early or the guest did not boot: {data[-300:]!r}")
    output.write_bytes(data)
    print(f"{output}: {len(data)} bytes in {elapsed:.1f} s, kernel {kernel_version()}")


def kernel_version() -> str:
    return (lab.kernel_dir() / "version").read_text().strip()


def _event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("linux-boot.log"))
