"""`ovmtui pool …` and `ovmtui host …` as an operator types them: the estate file edited in
place (comments kept), journaled, and every refusal exit 2 with the file unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NODE = (Path(__file__).parent.parent / "data" / "libvirt-node-small.xml").resolve()
URI = f"test://{NODE}"

ESTATE = f"""\
# ask Ana first
[[pools]]
name = "a"   # the old rack

  [[pools.hosts]]
  name = "h1"
  libvirt = "{URI}"
  roles = ["master", "utility", "vm"]

  # h2: new PSU
  [[pools.hosts]]
  name = "h2"
  libvirt = "{URI}"
  roles = ["vm"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "estate.toml"
    path.write_text(ESTATE)
    return path


def ovmtui(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(config)]
    argv += ["--repository", str(config.parent / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


def journal(config: Path) -> list[tuple[str, str | None, bool, str]]:
    done = ovmtui(config, "audit", "--json")
    assert done.returncode == 0, done.stderr
    return [
        (r["operation"], r["host"], r["ok"], r["command"])
        for r in json.loads(done.stdout)
        if str(r["operation"]).startswith("estate-")
    ]


def test_pools_and_hosts_added_and_removed_from_a_shell(config: Path) -> None:
    done = ovmtui(config, "pool", "add", "b", "--shared-storage", "/OVS")
    assert done.returncode == 0, done.stderr
    assert "ovmtui pool add b --shared-storage /OVS: done" in done.stdout
    assert "the previous version is" in done.stdout
    done = ovmtui(
        config, "host", "add", "b", "x1", "--ssh", "root@x1.example.com:2222",
        "--identity", "/k", "--toolstack", "xl", "--roles", "master,vm",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = config.read_text()
    assert text.startswith(ESTATE)  # everything before it, comments and all, as it was
    assert '  name = "x1"\n  ssh = "root@x1.example.com:2222"\n  identity = "/k"\n' in text
    assert 'roles = ["master", "vm"]' in text
    assert ovmtui(config, "host", "roles", "x1", "vm,utility").returncode == 0
    assert 'roles = ["vm", "utility"]' in config.read_text()
    assert ovmtui(config, "host", "remove", "x1").returncode == 0  # ran no VM
    assert ovmtui(config, "pool", "remove", "b").returncode == 0
    assert config.read_text() == ESTATE
    assert [(op, host, ok) for op, host, ok, _ in journal(config)] == [
        ("estate-pool-add", None, True),
        ("estate-host-add", "x1", True),
        ("estate-host-roles", "x1", True),
        ("estate-host-remove", "x1", True),
        ("estate-pool-remove", None, True),
    ]
    backups = sorted(p.name for p in config.parent.glob("estate.toml.*.bak"))
    assert len(backups) == 5


def test_promote_moves_the_master_and_journals_the_reason(config: Path) -> None:
    done = ovmtui(config, "host", "promote", "h2", "--reason", "h1 lost a disk")
    assert done.returncode == 0, done.stderr
    assert "moved from h1 to h2; reason: h1 lost a disk" in done.stdout
    text = config.read_text()
    assert 'name = "h1"\n  libvirt' in text and 'roles = ["utility", "vm"]' in text
    assert 'roles = ["master", "vm"]' in text and "# h2: new PSU" in text
    ((op, host, ok, command),) = journal(config)
    assert (op, host, ok) == ("estate-host-promote", "h2", True)
    assert command == "ovmtui host promote h2 --reason 'h1 lost a disk'"


def test_a_host_running_vms_needs_its_name_typed(config: Path) -> None:
    # The repository's last-known state says what runs there: recorded by a first look.
    assert ovmtui(config, "inventory").returncode == 0
    done = ovmtui(config, "host", "remove", "h2")
    assert done.returncode == 2
    assert "h2 runs" in done.stderr and "--force h2" in done.stderr
    assert config.read_text() == ESTATE
    assert ovmtui(config, "host", "remove", "h2", "--force", "h1").returncode == 2
    done = ovmtui(config, "host", "remove", "h2", "--force", "h2")
    assert done.returncode == 0, done.stderr
    assert '"h2"' not in config.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("host", "add", "a", "h1", "--libvirt", URI), "host 'h1' exists already"),
        (("host", "add", "a", "h3", "--libvirt", URI, "--roles", "master"), "more than one master"),
        (("host", "add", "a", "h3", "--libvirt", URI, "--roles", "boss"), "unknown role 'boss'"),
        (("host", "add", "a", "h3", "--libvirt", "qemu+ssh://a b/system"), "a space"),
        (("host", "add", "a", "h3", "--ssh", "root@-oProxyCommand=x"), "not a host name"),
        (("host", "add", "a", "h3", "--libvirt", URI, "--identity", "/k"), "go with --ssh"),
        (("host", "add", "zz", "h3", "--libvirt", URI), "no pool 'zz'"),
        (("host", "roles", "h2", "master"), "more than one master"),
        (("host", "promote", "h1", "--reason", "x"), "master of pool a already"),
        (("pool", "add", "a"), "pool 'a' exists already"),
        (("pool", "remove", "a"), "still has hosts"),
        (("--read-only", "pool", "add", "z"), "read-only"),
    ],
)
def test_bad_input_exits_2_and_leaves_the_file(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    done = ovmtui(config, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert config.read_text() == ESTATE
    assert not list(config.parent.glob("*.bak"))


def test_usage_errors_exit_2(config: Path) -> None:
    for args in (
        ("host", "add", "a", "h3"),  # no connection
        ("host", "add", "a", "h3", "--libvirt", URI, "--ssh", "root@h3"),
        ("host", "promote", "h2"),  # no reason
    ):
        done = ovmtui(config, *args)
        assert done.returncode == 2, args
    assert config.read_text() == ESTATE


def test_the_demo_estate_has_no_file_to_edit(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "ovmtui", "--demo", "--repository", str(tmp_path / "r.sqlite")]
    done = subprocess.run(
        [*argv, "pool", "add", "z"], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert done.returncode == 2 and "no file to edit" in done.stderr


def test_the_tui_is_given_the_file_it_edits(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ovmtui import cli

    seen: dict[str, object] = {}

    def run_tui(estate: object, repository: Path, **kw: object) -> int:
        seen.update(kw, estate=estate)
        return 0

    monkeypatch.setattr(cli, "_run_tui", run_tui)
    assert cli.main(["--config", str(config), "--repository", str(config.parent / "r")]) == 0
    file = seen["estate_file"]
    assert file is not None and file.path == config  # type: ignore[attr-defined]
    assert file.text == ESTATE and seen["estate"] is file.estate  # type: ignore[attr-defined]
    seen.clear()
    assert cli.main(["--demo", "--repository", str(config.parent / "r")]) == 0
    assert seen["estate_file"] is None


def test_without_repository_the_edit_is_journaled_where_every_command_records(
    config: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    base = [sys.executable, "-m", "ovmtui", "--config", str(config)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )

    assert run("host", "roles", "h2", "vm,utility").returncode == 0
    done = run("audit", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["operation"] for r in json.loads(done.stdout)] == ["estate-host-roles"]
    assert (tmp_path / "data" / "ovmtui" / "repository.sqlite").exists()
