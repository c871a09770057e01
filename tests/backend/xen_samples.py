"""What the tests of the Xen parsers share: the recorded outputs and how to look into them.

Every file under tests/data/xen/ is a literal capture published by someone else (its first
line, ``# source: ...``, says where from; ``load`` skips it). Each has a test asserting
values read in the file by hand; the property tests then cut, damage and replace those
texts: the parsers must never raise and never report a value the text does not hold.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ovmtui.backend.xen_parse.common import Parsed, XenDomain
from ovmtui.backend.xen_parse.xm_table import TableRow

DATA = Path(__file__).resolve().parent.parent / "data" / "xen"
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> str:
    """A recorded output without its ``# source:`` line."""
    text = (DATA / name).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("# source:"), name
    return rest


def names(domains: Parsed[tuple[XenDomain, ...]]) -> list[str]:
    return [domain.vm.name for domain in domains.value]


def reasons(parsed: Parsed[object]) -> list[tuple[int, str]]:
    return [(issue.line, issue.reason) for issue in parsed.issues]


def row(rows: Parsed[tuple[TableRow, ...]], name: str) -> TableRow:
    (found,) = [r for r in rows.value if r.name == name]
    return found


# Characters the formats give meaning to, and some they do not (no backslash: an escape
# decodes to a value that is not verbatim in the text, which is right but not checkable).
JUNK_CHARS = st.sampled_from(list("()[]{}:,=' \"\t\n-.#0123456789abcdefrspd_xX\x00é"))
FRAGMENTS = st.sampled_from(
    [
        "(domain ",
        "(name ",
        "(uuid ",
        "0004fb00-0006-0000-236e-45007b980aa1",
        "(domid ",
        "(memory ",
        "(state ",
        "-b----",
        "(device (vbd (uname file:/x.img) (dev xvda:disk) (mode w)))",
        "(device (vif (mac 00:16:3e:00:00:01) (bridge xenbr0)))",
        "(image (hvm ",
        ")",
        "(",
        " ",
        "\n",
        "'",
        "web01",
        "12",
        "Error: no\n",
        '{"domid": 3, "config": {"c_info": {"name": "a", "uuid": ',
        '"43f8cbea-5295-418a-bf26-f887a6d4623d"',
        "}}",
        "[",
        "]",
        ",",
        "Name ID Mem VCPUs State Time(s)\n",
        "web01 3 512 1 r----- 1.5\n",
        "host : h\n",
        "nr_cpus : 4\n",
        "name = 'x'\n",
        "disk = ['phy:/dev/x,xvda,w']\n",
        "vif = ['mac=00:16:3e:00:00:01,bridge=br0']\n",
    ]
)
