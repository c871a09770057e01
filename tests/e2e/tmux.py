"""Drive a real program in a real terminal: tmux on a private socket."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path


class TmuxSession:
    def __init__(
        self,
        command: Sequence[str],
        *,
        width: int = 120,
        height: int = 32,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed (make install installs it)")
        self.socket = f"ovmtui-test-{uuid.uuid4().hex[:8]}"
        self.name = "e2e"
        # The tmux server does not pass the test's environment on: carry what isolates it.
        inherited = {
            k: os.environ[k] for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME") if k in os.environ
        }
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**inherited, **(env or {})}.items())
        # COLUMNS/LINES inherited from a test runner would override the real terminal size.
        # The exit status goes to a file: tmux's own #{pane_dead_status} is sometimes still
        # empty when the pane is already dead.
        self._status_file = Path(tempfile.mkstemp(prefix="ovmtui-e2e-status-")[1])
        shell_command = (
            f"env -u COLUMNS -u LINES {exports} {shlex.join(command)}; "
            f"echo $? > {shlex.quote(str(self._status_file))}"
        )
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(width),
            "-y",
            str(height),
            *(["-c", str(cwd)] if cwd else []),
            shell_command,
        )
        # Keep the pane after the program exits so its last screen and status can be read.
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    def screen(self, *, escapes: bool = False) -> str:
        """The pane's text; with `escapes`, with the SGR sequences of its colours and styles."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name)

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float = 20.0, what: str = "condition"
    ) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")

    def wait_text(self, text: str, timeout: float = 20.0) -> str:
        return self.wait_for(lambda s: text in s, timeout, repr(text))

    def exit_status(self) -> int | None:
        """The program's exit status once it has ended, else None."""
        text = self._status_file.read_text().strip()
        return int(text) if text else None

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )
