"""Launch to first painted screen: `ovmtui --demo` against a bare Textual app.

    .venv/bin/python bench/startup.py

Target: ovmtui's dashboard is first painted within 1.5x the time a bare Textual app (Header,
200-row DataTable, Footer) takes to paint its screen. Every launch is a fresh process
(interpreter start and imports included), headless at 160x50, timed from just before the
process is spawned to the paint the child reports (see `_startup_driver.py`), the two apps
launched in turn. Also shown: when the demo estate's first poll is on screen.

ovmtui's bytecode is compiled first, as an installed package's is (pip compiles at install;
Textual's in site-packages is): with PYTHONDONTWRITEBYTECODE set, as on these machines, every
launch would otherwise compile ovmtui's sources anew (~130 ms), and the figure would grow with
the code rather than with what starting does.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, header, median, ms, row, title, verdict

REPS = 9
DRIVER = Path(__file__).resolve().with_name("_startup_driver.py")


def launch(kind: str) -> dict[str, float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(DRIVER), kind],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marks = {}
    for line in done.stdout.splitlines():
        what, _, when = line.partition(" ")
        if what in ("first", "data"):
            marks[what] = float(when) - start
    if "first" not in marks:
        raise SystemExit(f"{kind} launch reported no paint:\n{done.stdout}\n{done.stderr}")
    return marks


def main() -> None:
    header("startup", REPS, "launches of each app, interleaved")
    compileall.compile_dir(ROOT / "ovmtui", quiet=1)
    launch("bare")  # warm the OS file cache for both before timing
    launch("ovmtui")
    bare, ovm = [], []
    for _ in range(REPS):
        bare.append(launch("bare"))
        ovm.append(launch("ovmtui"))
    base = median(m["first"] for m in bare)
    first = median(m["first"] for m in ovm)
    data = median(m.get("data", float("nan")) for m in ovm)
    title("launch to first painted screen (fresh process, headless 160x50)")
    row("bare Textual app: Header, 200-row DataTable", ms(base), "baseline")
    row("ovmtui --demo: dashboard first painted", ms(first), f"{first / base:.2f}x")
    row("ovmtui --demo: demo estate's data painted", ms(data), f"{data / base:.2f}x (info)")
    verdict("(2) startup", first <= 1.5 * base, f"{first / base:.2f}x <= 1.5x")


if __name__ == "__main__":
    main()
