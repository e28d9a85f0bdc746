"""The instruction table is the single source: engine dispatch, cost rules and the generated
reference all come from it."""

from pathlib import Path

from wse_emu import isa
from wse_emu.arch import ARCHS, ArchProfile
from wse_emu.engine import kinds
from wse_emu.isadoc import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_generated_isa_reference_is_fresh():
    page = (ROOT / "docs" / "ISA.md").read_text()
    assert page == markdown(), "docs/ISA.md is stale: run `wse-emu isa --markdown > docs/ISA.md`"


def test_every_row_maps_to_engine_semantics_and_costs():
    for row in isa.table():
        assert row.sem in kinds.SEM_NAMES, row.mnemonic
        assert row.fn in kinds.FN_NAMES, row.mnemonic
        dtypes = row.dtypes or (row.fixed[:1] if row.fixed else (None,))
        for dt in dtypes:
            cls = row.cost_class(dt)
            for arch in ARCHS:
                ArchProfile(arch)[cls]  # raises KeyError when the class is missing


def test_cost_table_cites_a_source_for_every_number():
    costs = isa.costs()
    for group in ("simd", "cycles", "size"):
        for key, row in costs[group].items():
            assert row["source"].strip(), f"{group}.{key} has no source"
            assert set(ARCHS) <= set(row), f"{group}.{key} lacks an arch"


def test_sem_coverage_of_design_brief():
    mnemonics = set(isa.by_mnemonic())
    required = {
        "vmov",
        "vadd",
        "vsub",
        "vmul",
        "vfmac",
        "vfmacs",
        "vfmach",
        "vmax",
        "vmin",
        "vneg",
        "vabs",
        "vcvt",
        "vsum",
        "vdot",
        "vrmax",
        "vexp",
        "vlog",
        "vtanh",
        "vsigmoid",
        "vgelu",
        "vrelu",
        "vrsqrt",
        "vrecip",
        "send",
        "recv",
        "activate",
        "block",
        "unblock",
        "halt",
        "ld",
        "st",
        "dmem",
        "dfin",
        "dfout",
        "call",
        "ret",
    }
    assert required <= mnemonics
