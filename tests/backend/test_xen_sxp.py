"""The S-expression reader: quotes, escapes, what is left open or closed too often."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ovmtui.backend.xen_parse.sxp import SxpValue, parse_sxp
from tests.backend.xen_samples import PROPERTY


def test_sxp_reader() -> None:
    values, issues = parse_sxp("(domain (domid 3) (name 'web 01') (cpus (() ())) (args ''))")
    assert issues == ()
    assert values == [
        ["domain", ["domid", "3"], ["name", "web 01"], ["cpus", [[], []]], ["args", ""]]
    ]


def test_sxp_reader_keeps_what_closed_and_reports_the_rest() -> None:
    values, issues = parse_sxp("a (b c)) d\n)\n(e 'f\n(g (h i) (j k", "test")
    assert values == ["a", ["b", "c"], "d", ["e", ["g", ["h", "i"], ["j"]]]]  # "k" was cut
    assert [(issue.line, issue.reason) for issue in issues] == [
        (1, "unbalanced parenthesis: ')' without '('"),
        (2, "unbalanced parenthesis: ')' without '('"),
        (3, "unterminated quoted string"),
        (3, "unbalanced parenthesis: 3 list(s) still open at the end (truncated?)"),
    ]


def test_sxp_quotes_escapes_and_apostrophes_in_atoms() -> None:
    values, issues = parse_sxp(r"""(a 'it\'s' "x\"y" don't (b'c) 'a\nb')""")
    assert issues == ()
    assert values == [["a", "it's", 'x"y', "don't", ["b'c"], "a\nb"]]


# Atoms, quoted strings (as ("q", text)) and lists of them, three levels deep.
ATOMS = st.sampled_from(["a", "b1", "xvda:disk", "/x/y.img", "é", "-b----", "0.5", "k=v"])
QUOTED = st.sampled_from(["", "a b", "(x)", " ", 'say "hi"']).map(lambda text: ("q", text))
LEAVES = ATOMS | QUOTED
SXP_TREES = st.lists(
    LEAVES | st.lists(LEAVES | st.lists(LEAVES, max_size=3), max_size=4), max_size=5
)


def _show(value: object) -> str:
    if isinstance(value, list):
        return "(" + " ".join(_show(item) for item in value) + ")"
    if isinstance(value, tuple):
        return "'" + str(value[1]) + "'"
    return str(value)


def _plain(value: object) -> SxpValue:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value[1]) if isinstance(value, tuple) else str(value)


@PROPERTY
@given(st.lists(SXP_TREES, max_size=3), st.booleans())
def test_sxp_reads_back_what_was_written(trees: list[list[object]], pretty: bool) -> None:
    separator = "\n  " if pretty else " "
    text = "\n".join("(" + separator.join(_show(item) for item in tree) + ")" for tree in trees)
    values, issues = parse_sxp(text)
    assert issues == ()
    assert values == [_plain(tree) for tree in trees]
