"""Rule 6 of the architecture: below the UI nothing imports Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "ovmtui.model",
        "ovmtui.config",
        "ovmtui.backend",
        "ovmtui.backend.base",
        "ovmtui.backend.factory",
        "ovmtui.backend.libvirt",
        "ovmtui.services.poller",
        "ovmtui.services.actions",
        "ovmtui.services.session",
        "ovmtui.operations",
        "ovmtui.headless",
        "ovmtui.demo",
    ],
)
def test_importing_lower_layers_does_not_import_textual(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} pulled in: {out}"
