"""A record's machine: the CPU's model and the vector extensions that set a timing's speed, read
from ``/proc/cpuinfo`` text in the kernel's x86 and Arm layouts, kept in ``meta.hardware``, named
on every page that states the machine, and absent (not an error) in records written before."""
from __future__ import annotations

import dataclasses

from analysis.rendering.provenance import hardware_text
from separation.core.records import Hardware, Meta, cpu_description, decode, encode

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512bw avx512_vnni sha_ni

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu sse2
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes asimddp sve
CPU implementer\t: 0x41
"""


def test_the_model_and_vector_extensions_come_from_the_first_cpu():
    assert cpu_description(X86) == ("AMD EPYC 7B13 64-Core Processor",
                                    ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"])
    assert cpu_description(ARM) == ("", ["asimd", "asimddp", "sve"])
    assert cpu_description("") == ("", [])


def _meta(hw):
    return Meta("2026-12-07T00:00:00+0000", "0", "abc", {}, hw)


class _Rec:  # what hardware_text reads of a record
    def __init__(self, hw):
        self.meta = _meta(hw)


def test_pages_name_the_cpu_where_the_record_has_it():
    hw = Hardware("x86_64", 2, "x86_64", None, "AMD EPYC", ["avx", "avx2", "fma"])
    assert hardware_text([_Rec(hw)]) == "x86_64, 2 CPUs (AMD EPYC; avx, avx2, fma)"
    assert hardware_text([_Rec(dataclasses.replace(hw, vector_extensions=[]))]) == "x86_64, 2 CPUs (AMD EPYC)"
    assert hardware_text([_Rec(Hardware("x86_64", 2, "x86_64"))]) == "x86_64, 2 CPUs"


def test_a_record_written_before_the_cpu_fields_still_reads():
    data = encode(_meta(Hardware("x86_64", 2, "x86_64", None, "AMD EPYC", ["avx2"])))
    assert decode(Meta, data).hardware.vector_extensions == ["avx2"]
    for field in ("cpu_model", "vector_extensions"):
        del data["hardware"][field]
    assert decode(Meta, data).hardware == Hardware("x86_64", 2, "x86_64")
