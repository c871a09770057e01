"""Every Xen parser on damaged real outputs and on random text: it never raises and never
reports a value the text does not hold.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ovmtui.backend.xen_parse.common import Parsed, ParseIssue, XenDomain
from ovmtui.backend.xen_parse.info import parse_info
from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg, vm_config
from ovmtui.backend.xen_parse.xl_json import parse_xl_list_long
from ovmtui.backend.xen_parse.xm_list_long import parse_xm_list_long
from ovmtui.backend.xen_parse.xm_table import TableRow, parse_list_table
from ovmtui.model import HostFacts
from tests.backend.xen_samples import DATA, FRAGMENTS, JUNK_CHARS, PROPERTY, load

# --------------------------------------------------------------------------- properties

FIXTURES: dict[str, Callable[[str], Parsed[object]]] = {}
for _folder, _parser in [
    ("xm_list", parse_list_table),
    ("xl_list", parse_list_table),
    ("xm_list_long", parse_xm_list_long),
    ("xl_list_long", parse_xl_list_long),
    ("xm_info", parse_info),
    ("xl_info", parse_info),
    ("vm_cfg", parse_vm_cfg),
    ("xen_cfg", parse_vm_cfg),
]:
    for _path in sorted((DATA / _folder).iterdir()):
        FIXTURES[f"{_folder}/{_path.name}"] = _parser

PARSERS: list[Callable[[str], Parsed[object]]] = [
    parse_list_table,
    parse_xm_list_long,
    parse_xl_list_long,
    parse_info,
    parse_vm_cfg,
]


def _squash(text: str) -> str:
    return text.lower().replace("-", "").replace(":", "")


def check(text: str, parsed: Parsed[object]) -> None:
    """Nothing parsed is absent from the text; every issue points into it."""
    line_count = text.count("\n") + 1
    for issue in parsed.issues:
        assert isinstance(issue, ParseIssue)
        assert 0 <= issue.line <= line_count
        assert len(issue.text) <= 200
        assert str(issue)
    squashed = _squash(text)
    value = parsed.value
    if isinstance(value, HostFacts):
        # A value may be wrapped onto the next line: each of its words is in the text.
        assert value.hostname is None or all(w in text for w in value.hostname.split())
        return
    if isinstance(value, dict):
        assert all(key in text for key in value)
        config = vm_config(value)
        assert config.value.uuid is None or _squash(config.value.uuid) in squashed
        return
    assert isinstance(value, tuple)
    for item in value:
        if isinstance(item, TableRow):
            assert item.name and item.name in text
            assert item.uuid is None or _squash(item.uuid) in squashed
            continue
        assert isinstance(item, XenDomain)
        vm = item.vm
        assert vm.name and vm.name in text
        assert _squash(vm.uuid) in squashed
        for disk in vm.disks:
            assert disk.target in text
            assert disk.source is None or disk.source in text
        for nic in vm.nics:
            assert nic.mac is None or _squash(nic.mac) in squashed
            assert nic.network is None or nic.network in text


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_any_truncation_of_a_real_output(name: str, data: st.DataObject) -> None:
    text = load(name)
    cut = data.draw(st.integers(0, len(text)))
    check(text[:cut], FIXTURES[name](text[:cut]))


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_any_deletion_from_a_real_output(name: str, data: st.DataObject) -> None:
    text = load(name)
    spans = data.draw(
        st.lists(st.tuples(st.integers(0, len(text)), st.integers(1, 12)), max_size=6)
    )
    for start, length in spans:
        text = text[:start] + text[start + length :]
    check(text, FIXTURES[name](text))


@PROPERTY
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_lines_of_junk_inside_a_real_output(name: str, data: st.DataObject) -> None:
    lines = load(name).split("\n")
    junk = data.draw(st.lists(st.text(alphabet=JUNK_CHARS, max_size=40), max_size=4))
    for line in junk:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    text = "\n".join(lines)
    check(text, FIXTURES[name](text))


@PROPERTY
@given(st.sampled_from(PARSERS), st.text(alphabet=JUNK_CHARS, max_size=300))
def test_random_text(parser: Callable[[str], Parsed[object]], text: str) -> None:
    check(text, parser(text))


@PROPERTY
@given(st.sampled_from(PARSERS), st.lists(FRAGMENTS, max_size=40).map("".join))
def test_random_fragments_of_the_formats(
    parser: Callable[[str], Parsed[object]], text: str
) -> None:
    check(text, parser(text))
