"""``hw_caps`` of ``xm info`` / ``xl info``: the host CPU's feature bits, read into names.

Xen prints no flag names, only CPUID words in hex (``bfebfbff:2c100800:...``), and their
order changed in Xen 4.7, when the hypervisor's ``x86_capability`` words gave way to its
"featureset":

- before 4.7 (xend's Xen 3.x and 4.x, Oracle VM 3): 1.EDX, 0x80000001.EDX, Transmeta,
  Linux-defined (synthetic bits, no CPUID), 1.ECX, VIA, 0x80000001.ECX, 7.0.EBX;
- from 4.7: 1.EDX, 1.ECX, 0x80000001.EDX, 0x80000001.ECX, 0xD.1.EAX, 7.0.EBX, 7.0.ECX,
  0x80000007.EDX, ...

Bits are named as Linux's ``/proc/cpuinfo`` does where this table knows them, else
``cpuid <word> bit <n>``; the synthetic word is left out (nothing a guest sees). ARM hosts
print zeros: no bit set, nothing to name.
"""

from __future__ import annotations

import re

# CPUID words this module names, by the registers they come from.
_LEAF1_EDX = (
    "fpu vme de pse tsc msr pae mce cx8 apic - sep mtrr pge mca cmov "
    "pat pse36 pn clflush - dts acpi mmx fxsr sse sse2 ss ht tm ia64 pbe"
)
_LEAF1_ECX = (
    "pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 cid sdbg fma cx16 xtpr pdcm "
    "- pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave osxsave avx "
    "f16c rdrand hypervisor"
)
_EXT1_EDX = (
    "- - - - - - - - - - - syscall - - - - "
    "- - - mp nx - mmxext - - fxsr_opt pdpe1gb rdtscp - lm 3dnowext 3dnow"
)
_EXT1_ECX = (
    "lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs "
    "xop skinit wdt - lwp fma4 tce - nodeid_msr - tbm topoext perfctr_core perfctr_nb - "
    "bpext ptsc perfctr_llc mwaitx - -"
)
_LEAF7_EBX = (
    "fsgsbase tsc_adjust - bmi1 hle avx2 - smep bmi2 erms invpcid rtm cqm - mpx rdt_a "
    "avx512f avx512dq rdseed adx smap avx512ifma - clflushopt clwb intel_pt avx512pf avx512er "
    "avx512cd sha_ni avx512bw avx512vl"
)
_XSAVE_EAX = "xsaveopt xsavec xgetbv1 xsaves" + " -" * 28


def _names(text: str) -> tuple[str | None, ...]:
    names = tuple(None if name == "-" else name for name in text.split())
    assert len(names) == 32, text
    return names


_OLD_LAYOUT: dict[int, tuple[str | None, ...] | None] = {
    0: _names(_LEAF1_EDX),
    1: _names(_EXT1_EDX),
    3: None,  # Linux-defined synthetic bits: no CPUID, nothing a guest sees
    4: _names(_LEAF1_ECX),
    6: _names(_EXT1_ECX),
    7: _names(_LEAF7_EBX),
}
_FEATURESET: dict[int, tuple[str | None, ...] | None] = {
    0: _names(_LEAF1_EDX),
    1: _names(_LEAF1_ECX),
    2: _names(_EXT1_EDX),
    3: _names(_EXT1_ECX),
    4: _names(_XSAVE_EAX),
    5: _names(_LEAF7_EBX),
}
_WORD = re.compile(r"[0-9a-fA-F]{1,8}")


def featureset_layout(xen_major: int | None, xen_minor: int | None) -> bool | None:
    """True when ``hw_caps`` is Xen's featureset (4.7 and later), False for the older
    ``x86_capability`` words, None when the version is unknown."""
    if xen_major is None or xen_minor is None:
        return None
    return (xen_major, xen_minor) >= (4, 7)


def cpu_flags(hw_caps: str, *, featureset: bool | None) -> tuple[str, ...] | None:
    """The flag names of ``hw_caps`` (``bfebfbff:2c100800:...``), in word and bit order;
    None when it is not a list of hex words or the layout (Xen's version) is unknown."""
    words = hw_caps.strip().split(":")
    if featureset is None or not words or not all(_WORD.fullmatch(word) for word in words):
        return None
    layout = _FEATURESET if featureset else _OLD_LAYOUT
    flags: list[str] = []
    for index, word in enumerate(words):
        value = int(word, 16)
        names = layout.get(index, ())
        if names is None:
            continue
        for bit in range(32):
            if value >> bit & 1:
                name = names[bit] if names else None
                flags.append(name or f"cpuid {index} bit {bit}")
    return tuple(flags)
