"""Real OpenSSH sshd on loopback serving fake Xen dom0s (``xm``/``xl``) for the tests.

``SshdServer.start(...)`` gives fake hosts; ``tests.sshfake.fixtures`` wraps it as pytest
fixtures. ``xenstate`` holds the fakes' state model and their output renderers.
"""

from .sshd import MAX_LISTEN_SOCKS, FakeXenHost, HostSpec, SshdServer
from .xenstate import generate_domains, make_domain

__all__ = [
    "MAX_LISTEN_SOCKS",
    "FakeXenHost",
    "HostSpec",
    "SshdServer",
    "generate_domains",
    "make_domain",
]
