"""An import's plan, decided before anything runs: URLs, names, kinds, folders (tables)."""

from __future__ import annotations

import pytest

from ovmtui.backend.ssh_import_scripts import (
    Member,
    ProbeFailed,
    archive_refusal,
    failure,
    read_listing,
    read_prepared,
    read_probe,
    read_tools,
)
from ovmtui.import_plan import BadImport, check_name, plan_import, strip_prefix
from ovmtui.import_progress import ImportProgress, RateMeter, describe


@pytest.mark.parametrize(
    ("url", "kind", "name", "final", "partial"),
    [
        (
            "http://mirror/isos/OracleLinux-R5-U8.iso",
            "iso",
            None,
            "/OVS/iso_pool/OracleLinux-R5-U8/OracleLinux-R5-U8.iso",
            "/OVS/iso_pool/OracleLinux-R5-U8/OracleLinux-R5-U8.iso.partial",
        ),
        (
            "https://mirror/a/b.iso?token=1",
            "iso",
            "el5",
            "/OVS/iso_pool/el5/el5.iso",
            "/OVS/iso_pool/el5/el5.iso.partial",
        ),
        (
            "ftp://edelivery/OVM_EL5U3_X86_PVM_10GB.tgz",
            "template",
            None,
            "/OVS/seed_pool/OVM_EL5U3_X86_PVM_10GB",
            "/OVS/seed_pool/OVM_EL5U3_X86_PVM_10GB.partial",
        ),
        (
            "http://h/t.tar.gz",
            "template",
            "web",
            "/OVS/seed_pool/web",
            "/OVS/seed_pool/web.partial",
        ),
        (
            "http://h/quorum.img",
            "image",
            None,
            "/OVS/sharedDisk/quorum.img",
            "/OVS/sharedDisk/quorum.img.partial",
        ),
        (
            "http://h/disk.qcow2",
            "image",
            None,
            "/OVS/sharedDisk/disk.qcow2",
            "/OVS/sharedDisk/disk.qcow2.partial",
        ),
        (
            "http://h/my%20disk",
            "image",
            "d1",
            "/OVS/sharedDisk/d1.img",
            "/OVS/sharedDisk/d1.img.partial",
        ),
    ],
)
def test_the_kind_decides_the_folder(
    url: str, kind: str, name: str | None, final: str, partial: str
) -> None:
    plan = plan_import(url, kind, "/OVS/", name=name)
    assert (plan.final, plan.partial) == (final, partial)
    assert plan.archive is (kind == "template")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "scheme is 'file'"),
        ("scp://h/x.iso", "scheme is 'scp'"),
        ("/srv/x.iso", "scheme is none"),
        ("http:///x.iso", "no host"),
        ("http://h/", "names a folder"),
        ("http://h/a b.iso", "spaces or control"),
        ("http://h/a\nb.iso", "spaces or control"),
        ("http://h:99999/x.iso", "not a URL"),
        ("", "no URL"),
    ],
)
def test_bad_urls(url: str, why: str) -> None:
    with pytest.raises(BadImport, match=why):
        plan_import(url, "iso", "/OVS")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a/b", "cannot hold '/'"),
        ("..", "cannot hold '..'"),
        ("a..b", "cannot hold '..'"),
        ("x; touch /tmp/pwned", "'/'"),
        ("x;rm", "shell reads"),
        ("$(id)", "shell reads"),
        ("`id`", "shell reads"),
        ("a b", "shell reads"),
        ("-rf", "first character"),
        (".hidden", "first character"),
        ("é", "shell reads"),
        ("x.partial", "unfinished"),
        ("", "empty"),
        ("x" * 129, "at most 128"),
    ],
)
def test_bad_names(name: str, why: str) -> None:
    with pytest.raises(BadImport, match=why):
        check_name(name)


@pytest.mark.parametrize(
    ("kind", "storage", "sha", "why"),
    [
        ("disk", "/OVS", None, "one of iso, template, image"),
        ("iso", None, None, "no shared_storage"),
        ("iso", "OVS", None, "not an absolute path"),
        ("iso", "/OVS", "abc", "64 hexadecimal"),
        ("template", "/OVS", None, "imported as an archive"),
    ],
)
def test_bad_imports(kind: str, storage: str | None, sha: str | None, why: str) -> None:
    url = "http://h/x.iso"
    with pytest.raises(BadImport, match=why):
        plan_import(url, kind, storage, sha256=sha)


def test_a_name_from_an_odd_url_asks_for_one() -> None:
    with pytest.raises(BadImport, match="give the resource a name"):
        plan_import("http://h/a;b.iso", "iso", "/OVS")
    assert plan_import("http://h/a;b.iso", "iso", "/OVS", name="ab").name == "ab"


def test_the_sha256_is_kept_in_lower_case() -> None:
    assert plan_import("http://h/x.iso", "iso", "/OVS", sha256="AB" * 32).sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("members", "strip"),
    [
        (["T/", "T/vm.cfg", "T/System.img"], 1),
        (["./T/vm.cfg", "./T/System.img"], 1),
        (["vm.cfg", "System.img"], 0),
        (["vm.cfg"], 0),
        (["A/vm.cfg", "B/x"], 0),
    ],
)
def test_one_top_folder_is_stripped(members: list[str], strip: int) -> None:
    assert strip_prefix(members) == strip


def test_tools_and_prepare_are_read() -> None:
    assert read_tools("curl\nwget\nsha256sum\n") == ("curl", True)
    assert read_tools("wget\n") == ("wget", False)
    assert read_tools("") == (None, False)
    df = "@ovmtui created /OVS/iso_pool\n/dev/sda1 100 40 60 40% /OVS\n"
    prepared = read_prepared(df)
    assert (prepared.free_bytes, prepared.created, prepared.exists) == (60, "/OVS/iso_pool", None)
    assert read_prepared("@ovmtui exists\n").exists == "final"
    assert read_prepared("@ovmtui partial\n").exists == "partial"


CURL_OK = (
    "HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
)


@pytest.mark.parametrize(
    ("tool", "status", "output", "size", "why"),
    [
        ("curl", 0, CURL_OK, 1234, None),
        ("curl", 0, "HTTP/1.1 200 OK\r\n\r\n", None, None),
        ("curl", 0, "HTTP/1.1 405 Method Not Allowed\r\n", None, None),
        ("curl", 0, "Content-Length: 99\r\nAccept-ranges: bytes\r\n", 99, None),  # ftp
        ("curl", 0, "HTTP/1.0 404 File not found\r\n", None, "answered 404 File not found"),
        ("curl", 47, "curl: (47) Maximum (10) redirects followed", None, "redirect loop"),
        ("curl", 6, "curl: (6) Could not resolve host: x", None, "does not resolve"),
        ("curl", 78, "curl: (78) The file does not exist", None, "does not exist"),
        ("wget", 0, "  HTTP/1.1 200 OK\nLength: 77 (77) [x]\n", 77, None),
        ("wget", 0, "==> SIZE x.iso ... 55\n", 55, None),
        ("wget", 8, "  HTTP/1.0 404 File not found\nbroken link!!!", None, "answered 404"),
        ("wget", 8, "20 redirections exceeded.", None, "redirect loop"),
        ("wget", 8, "--> SIZE x.iso\n\n213 42\nFile 'x.iso' exists.\n", 42, None),
        ("wget", 4, "failed: Connection refused.", None, "refused the connection"),
    ],
)
def test_probes_are_read(
    tool: str, status: int, output: str, size: int | None, why: str | None
) -> None:
    if why is None:
        assert read_probe(tool, status, output).size == size  # type: ignore[arg-type]
    else:
        with pytest.raises(ProbeFailed, match=why):
            read_probe(tool, status, output)  # type: ignore[arg-type]


def test_failures_keep_the_tools_words() -> None:
    said = failure("curl", 22, "curl: (22) The requested URL returned error: 404")
    assert said == "the server answered 404: curl: (22) The requested URL returned error: 404"
    assert failure("curl", 99, "") == "curl failed (exit status 99)"
    assert failure("wget", None, "x").startswith("wget was stopped")


LISTING = """\
drwxr-xr-x 0/0               0 2010-01-01 00:00 T/
-rw-r--r-- 0/0             120 2010-01-01 00:00 T/vm.cfg
-rw-r--r-- 0/0      2147483648 2010-01-01 00:00 T/System image.img
lrwxrwxrwx 0/0               0 2010-01-01 00:00 T/link -> System image.img
"""


def test_an_archive_listing_is_read_and_judged() -> None:
    members = read_listing(LISTING)
    assert [m.name for m in members] == ["T/", "T/vm.cfg", "T/System image.img", "T/link"]
    assert members[2].size == 2147483648 and members[3].target == "System image.img"
    assert archive_refusal(members) is None
    outside = [*members, Member("l", 0, "T/x", "/etc/shadow")]
    assert "points outside" in (archive_refusal(outside) or "")
    assert "device or a pipe" in (archive_refusal([*members, Member("c", 0, "T/d")]) or "")
    assert "empty" in (archive_refusal([]) or "")
    with pytest.raises(ValueError, match="does not read"):
        read_listing("tar: something odd\n")


def test_progress_reads_as_one_line() -> None:
    reading = ImportProgress("downloading", 3.0, 50 * 2**20, 100 * 2**20, 10 * 2**20)
    assert describe(reading) == "downloading 50 % 50.0 MiB of 100.0 MiB, 10.0 MiB/s, 5s left"
    assert describe(ImportProgress("downloading", 1.0, 2048)) == "downloading 2 KiB"
    assert describe(ImportProgress("verifying", 1.0)) == "verifying"


def test_the_rate_is_measured_over_a_window() -> None:
    meter = RateMeter(window_s=5.0)
    assert meter.add(0.0, 0) is None
    assert meter.add(1.0, 100) == 100.0
    for second in range(2, 20):
        rate = meter.add(float(second), 100 * second)
    assert rate == 100.0
    assert meter.add(20.0, 100 * 19) is not None  # a stall shows within the window
    assert (meter.add(25.0, 1900) or 0) < 50
