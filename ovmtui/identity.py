"""Who the operator is: the name every journal record and job carries.

Today the operating system's user; once ovmtui has users of its own (Oracle VM's roles:
User, Manager, Admin, in groups), they are resolved here, and ``Operations.check`` asks for
their role.
"""

from __future__ import annotations

import getpass
import os


def current_user() -> str:
    """The operator, as the OS knows them (sudo keeps the name of who ran it)."""
    for name in ("SUDO_USER", "LOGNAME", "USER"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        return f"uid {os.getuid()}"
