"""A shell in a tmux pane, to run ovmtui as an operator does and look at the terminal after."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.tmux import TmuxSession

BINARY = Path(sys.executable).with_name("ovmtui")

# What a program can leave switched on in a terminal, as tmux reports it for the pane.
TERMINAL_FLAGS = (
    "cursor_flag",
    "alternate_on",
    "mouse_any_flag",
    "mouse_button_flag",
    "mouse_standard_flag",
    "mouse_sgr_flag",
)
RESTORED = {
    "cursor_flag": "1",
    "alternate_on": "0",
    "mouse_any_flag": "0",
    "mouse_button_flag": "0",
    "mouse_standard_flag": "0",
    "mouse_sgr_flag": "0",
}


class ShellSession(TmuxSession):
    """bash without line editing: what the terminal itself echoes is what shows."""

    def __init__(self, tmp_path: Path) -> None:
        env = {
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "TERM": "xterm-256color",
            "PS1": "ready$ ",
        }
        if "PYTHONPATH" in os.environ:  # the code under test, when it is not the installed one
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self._pid_file = tmp_path / "shell.pid"
        super().__init__(["bash", "--norc", "--noprofile", "--noediting", "-i"], env=env)
        self.wait_text("ready$")
        self.line(f"echo $$ > {self._pid_file}")
        self.wait_for(lambda _: self._pid_file.exists(), what="the shell's pid")

    def line(self, text: str) -> None:
        self.type(text)
        self.send("Enter")

    def start_ovmtui(self, repository: Path, *, then_status: bool = True) -> int:
        """Start the demo from the shell; returns the pid of ovmtui once it shows.

        ``then_status``: echo its exit status when it ends (but a job stopped by Ctrl+Z
        counts as ended for the shell: it echoes 147 then, and nothing after `fg`)."""
        after = "; echo status=$?" if then_status else ""
        self.line(f"{BINARY} --demo --repository {repository} --interval 1{after}")
        self.wait_text("app-batch01")
        self.wait_for(lambda s: "palette" in s.rstrip("\n").splitlines()[-1], what="the footer")
        shell = self._pid_file.read_text().strip()
        children = subprocess.run(
            ["ps", "--ppid", shell, "-o", "pid="], capture_output=True, text=True, check=True
        ).stdout.split()
        assert len(children) == 1, children
        return int(children[0])

    def flags(self) -> dict[str, str]:
        values = self._tmux(
            "display", "-p", "-t", self.name, " ".join(f"#{{{f}}}" for f in TERMINAL_FLAGS)
        ).split()
        return dict(zip(TERMINAL_FLAGS, values, strict=True))

    def status_of_last(self, timeout: float = 10.0, marker: str = "status") -> int:
        pattern = rf"^{marker}=(\d+)"
        screen = self.wait_for(
            lambda s: re.search(pattern, s, re.M) is not None, timeout, "ovmtui to end"
        )
        match = re.search(pattern, screen, re.M)
        assert match is not None
        return int(match.group(1))

    def echoes(self) -> bool:
        """Does the terminal echo what is typed and hand over whole lines? (cooked mode)"""
        self.line("echo o''k")
        screen = self.wait_for(lambda s: re.search(r"^ok$", s, re.M) is not None, 5, "echo ok")
        return "echo o''k" in screen


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running after {timeout} s")


SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "INT": signal.SIGINT}
