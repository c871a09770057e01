"""The one set of formatters: sizes, moments, durations, figures."""

from __future__ import annotations

import datetime
import math
import time

import pytest

from ovmtui import format as fmt

TIB = 1024 * 1024  # in MiB


@pytest.mark.parametrize(
    ("mib", "text"),
    [
        (None, "—"),
        (0, "0 MiB"),
        (512, "512 MiB"),
        (1023, "1023 MiB"),
        (1024, "1.0 GiB"),
        (1536, "1.5 GiB"),
        (2048, "2.0 GiB"),
        (1023 * 1024 + 900, "1023.9 GiB"),
        # The unit is chosen after rounding: never "1024.0 GiB".
        (TIB - 1, "1.0 TiB"),
        (TIB, "1.0 TiB"),
        (3 * TIB // 2, "1.5 TiB"),
    ],
)
def test_mib(mib: int | None, text: str) -> None:
    assert fmt.mib(mib) == text


def test_mib_in_plain_text_says_unknown_with_a_question_mark() -> None:
    # The headless commands' text output writes "?" for every value a host did not report.
    assert fmt.mib(None, "?") == "?"
    assert fmt.mib(3 * TIB // 2, "?") == "1.5 TiB"


@pytest.mark.parametrize(
    ("size_bytes", "text"),
    [
        (None, "—"),
        (0, "0 B"),
        (840, "840 B"),
        (1024, "1 KiB"),
        (84 * 1024 + 1000, "84 KiB"),
        (1024 * 1024, "1.0 MiB"),
        (int(10.2 * 1024 * 1024), "10.2 MiB"),
        (1024**3 - 1, "1.0 GiB"),
        (1024**3 * 3 // 2, "1.5 GiB"),
        (1024**4 * 2, "2.0 TiB"),
    ],
)
def test_size(size_bytes: int | None, text: str) -> None:
    assert fmt.size(size_bytes) == text


def test_size_and_mib_agree_from_a_mebibyte_up() -> None:
    for mib in (1024, 1536, 4096, 1023 * 1024 + 900, TIB - 1, TIB, 5 * TIB):
        assert fmt.size(mib * 1024 * 1024) == fmt.mib(mib)


def test_timestamp_is_local_time_to_the_second() -> None:
    moment = time.mktime((2026, 3, 14, 9, 26, 53, 0, 0, -1)) + 0.75
    assert fmt.timestamp(moment) == "2026-03-14 09:26:53"
    local = datetime.datetime.fromtimestamp(moment)
    assert fmt.timestamp(moment) == local.strftime(fmt.TIMESTAMP)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (-5.0, "0m"),
        (59.9, "0m"),
        (42 * 60 + 10, "42m"),
        (5 * 3600 + 12 * 60, "5h 12m"),
        (3600, "1h 00m"),
        (3 * 86400 + 4 * 3600 + 59 * 60, "3d 04h"),
        (400 * 86400, "400d 00h"),
    ],
)
def test_uptime(seconds: float | None, text: str) -> None:
    assert fmt.uptime(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (-1.0, "0s"),
        (42.9, "42s"),
        (5 * 60 + 59, "5m"),
        (3 * 3600 + 12 * 60, "3h 12m"),
        (4 * 86400 + 7 * 3600, "4d 07h"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_percent_and_count() -> None:
    assert fmt.percent(None) == "—"
    assert fmt.percent(math.nan) == "—"
    assert fmt.percent(12.345) == "12.3"
    assert fmt.percent(0) == "0.0"
    assert fmt.count(None) == "—"
    assert fmt.count(8) == "8"
