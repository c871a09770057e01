"""Real servers on loopback for the import tests: HTTP (python's http.server) and FTP
(pyftpdlib), serving a directory; and the files they serve (a tiny real ISO 9660, a
template archive as Oracle shipped them).

The HTTP server also answers ``/loop`` (a redirect loop), ``/moved/NAME`` (one redirect to
NAME) and ``/slow/NAME`` (NAME in 64 KiB pieces, a pause after each, for cancels).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import socketserver
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ISO_BLOCK = 2048
SLOW_PIECE = 64 * 1024


def make_iso(size_bytes: int = 64 * 1024, label: str = "OVMTUI") -> bytes:
    """A small ISO 9660 image: 16 empty system blocks, then a primary volume descriptor
    ('CD001' at byte 32769, where a reader looks), a terminator, padding to ``size_bytes``."""
    pvd = bytearray(ISO_BLOCK)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    pvd[40:72] = label.encode().ljust(32)
    term = bytearray(ISO_BLOCK)
    term[0] = 255
    term[1:6] = b"CD001"
    term[6] = 1
    image = bytes(16 * ISO_BLOCK) + bytes(pvd) + bytes(term)
    filler = bytes(range(256)) * (max(0, size_bytes - len(image)) // 256 + 1)
    return (image + filler)[: max(size_bytes, len(image))]


def make_template(
    folder: str = "OVM_EL5U3_X86_PVM_10GB", *, members: dict[str, bytes] | None = None
) -> bytes:
    """A template archive (``.tgz``): ``FOLDER/vm.cfg`` and ``FOLDER/System.img``, or the
    ``members`` given (names as they go into the archive)."""
    if members is None:
        members = {
            f"{folder}/vm.cfg": (
                b"name = 'OVM_EL5U3'\nmemory = '1024'\nvcpus = 1\n"
                b"disk = ['file:/OVS/seed_pool/OVM_EL5U3/System.img,xvda,w']\n"
            ),
            f"{folder}/System.img": bytes(200_000),
        }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.uid = info.gid = 4242  # not ours: --no-same-owner must not try to keep it
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "ovmtui-test/1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # (request, client address, server): the server is the third
        super().__init__(*args, directory=str(args[2].root), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # the base's parameter name
        self.server.requests.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]

    def _redirect(self, where: str) -> None:
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self.log_message("")
        if self.path.startswith("/loop"):
            self._redirect("/loop2" if self.path == "/loop" else "/loop")
        elif self.path.startswith("/moved/"):
            self._redirect("/" + self.path.removeprefix("/moved/"))
        elif self.path.startswith("/slow/"):
            self.path = "/" + self.path.removeprefix("/slow/")
            super().do_HEAD()
        elif self.path.startswith("/huge/"):
            self.send_response(200)  # a size beyond any storage, announced by HEAD only
            self.send_header("Content-Length", str(2**60))
            self.end_headers()
        else:
            super().do_HEAD()

    def do_GET(self) -> None:
        if self.path.startswith("/huge/"):
            self.do_HEAD()  # the size announced, then nothing
            return
        if self.path.startswith("/chunked/"):
            self.log_message("")
            data = (Path(self.server.root) / self.path.removeprefix("/chunked/")).read_bytes()  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 100_000):
                piece = data[start : start + 100_000]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if not self.path.startswith("/slow/"):
            if self.path.startswith(("/loop", "/moved/")):
                self.do_HEAD()
                return
            super().do_GET()
            return
        self.log_message("")
        path = Path(self.server.root) / self.path.removeprefix("/slow/")  # type: ignore[attr-defined]
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, len(data), SLOW_PIECE):
                self.wfile.write(data[start : start + SLOW_PIECE])
                self.wfile.flush()
                time.sleep(self.server.slow_pause_s)  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.slow_pause_s = 0.2
        super().__init__(("127.0.0.1", 0), _Handler)


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[_Server]:
    """An HTTP server on 127.0.0.1 serving ``root``; ``.server_port`` says where."""
    server = _Server(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url_of(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}/{path.lstrip('/')}"


@contextlib.contextmanager
def ftp_server(root: Path) -> Iterator[int]:
    """An anonymous, read-only FTP server on 127.0.0.1 serving ``root``; yields its port."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root))
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "ovmtui test"})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield port
    finally:
        server.close_all()
        thread.join(5)
