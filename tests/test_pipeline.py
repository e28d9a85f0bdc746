"""The PE pipeline (engine/pipeline.py): vector ops overlap the thread and each other, wait
where they must (dependences, the cycle counter, halt), and scalar per-opcode costs. Every
expected count is computed from the cost table's rules."""

import math

import numpy as np
import pytest
from conftest import run_program, timed_run

from wse_emu.arch import ArchProfile

ARCHS = ["wse2", "wse3"]


# a and c one word off b's SRAM bank group, so no two sources of these ops collide
DATA = ".data a f32[64]\n.data p1 f32[1]\n.data b f32[64]\n.data p2 f32[1]\n.data c f32[64]\n"


def timed(body, arch, data=DATA, overrides=None):
    """Cycles of body between two %cycle reads, after d0, d1, d2 are set to a, b, c."""
    setup = "    dmem d0, a, 64\n    dmem d1, b, 64\n    dmem d2, c, 64"
    return timed_run(data, setup, body, arch, overrides)[2]


def k(prof, n, cls="fp32_basic"):
    """Datapath cycles of an n-element op of that SIMD class."""
    return math.ceil(n / prof[cls])


@pytest.mark.parametrize("arch", ARCHS)
def test_one_op_pays_startup_elements_and_drain(arch):
    p = ArchProfile(arch)
    got = timed("    vadd.f32 d2, d0, d1", arch)
    assert got == p["vector_startup"] + k(p, 64) + p["vector_drain"]


@pytest.mark.parametrize("arch", ARCHS)
def test_independent_ops_pipeline_with_one_start_up(arch):
    """Two ops on disjoint buffers: the second enters the datapath a gap after the first,
    so the pair costs less than two lone ops."""
    p = ArchProfile(arch)
    got = timed("    vadd.f32 d2, d0, d1\n    vmov.f32 d0, d1", arch)
    pipelined = p["vector_startup"] + k(p, 64) + p["vector_gap"] + k(p, 64) + p["vector_drain"]
    assert got == pipelined
    alone = p["vector_startup"] + k(p, 64) + p["vector_drain"]
    assert got < 2 * alone


@pytest.mark.parametrize("arch", ARCHS)
def test_scalar_work_hides_behind_a_running_op(arch):
    p = ArchProfile(arch)
    adds = "\n".join("    add r5, r5, 1" for _ in range(6))
    alone = p["vector_startup"] + k(p, 64) + p["vector_drain"]
    assert 6 * p["scalar"] < alone  # the premise: the adds fit under the op
    assert timed("    vadd.f32 d2, d0, d1\n" + adds, arch) == alone


@pytest.mark.parametrize("arch", ARCHS)
def test_a_dependent_short_op_waits_for_the_first_results(arch):
    """vmov c <- a (4 elements), then vmov b <- c: the reader starts no earlier than the
    writer's begin plus the drain (results stream out in order)."""
    over = {"vector_drain": 9}  # longer than the writer, so the dependence binds
    p = ArchProfile(arch, over)
    body = (
        "    dlen d0, 4\n    dlen d1, 4\n    dlen d2, 4\n    vmov.f32 d2, d0\n    vmov.f32 d1, d2"
    )
    got = timed(body, arch, overrides=over)
    issue1 = 3 * p["dsd_write"]
    begin1 = issue1 + p["vector_startup"]
    issue2 = issue1 + p["scalar"]
    begin2 = max(issue2 + p["vector_startup"], begin1 + k(p, 4) + p["vector_gap"], begin1 + 9)
    assert got == begin2 + k(p, 4) + 9
    # the same pair on independent buffers does not wait for the drain
    indep = timed(body.replace("vmov.f32 d1, d2", "vmov.f32 d1, d0"), arch, overrides=over)
    assert indep < got


@pytest.mark.parametrize("arch", ARCHS)
def test_a_scalar_load_of_what_an_op_writes_waits_for_its_results(arch):
    p = ArchProfile(arch)
    adds = "\n".join("    add r5, r5, 1" for _ in range(30))
    op = "    vadd.f32 d2, d0, d1\n"
    free = timed(op + "    ld.f32 r6, [a]\n" + adds, arch)  # a is only read by the op
    hazard = timed(op + "    ld.f32 r6, [c + 8]\n" + adds, arch)
    done = p["vector_startup"] + k(p, 64) + p["vector_drain"]  # after the op issues
    rest = p["load"] + 30 * p["scalar"]
    assert free == max(p["scalar"] + rest, done)
    assert hazard == done + rest
    assert hazard > free


@pytest.mark.parametrize("arch", ARCHS)
def test_load_use_latency_and_per_opcode_costs(arch):
    p = ArchProfile(arch)
    back_to_back = timed("    ld.i32 r6, [t]\n    add r7, r6, 1", arch)
    assert back_to_back == max(p["load"], p["load_use"]) + p["scalar"]
    spaced = timed("    ld.i32 r6, [t]\n    add r8, r8, 1\n    add r7, r6, 1", arch)
    assert spaced == max(p["load"] + p["scalar"], p["load_use"]) + p["scalar"]
    assert timed("    mul r6, r6, r6", arch) == p["int_mul"]
    assert timed("    dmem d3, a, 4", arch) == p["dsd_write"]
    over = {"int_mul": 7, "dsd_write": 5, "load_use": 6}
    assert timed("    mul r6, r6, r6", arch, overrides=over) == 7
    assert timed("    dmem d3, a, 4", arch, overrides=over) == 5
    assert timed("    ld.i32 r6, [t]\n    add r7, r6, 1", arch, overrides=over) == 6 + 1


@pytest.mark.parametrize("arch", ARCHS)
def test_halt_waits_for_the_datapath_and_results_are_exact(arch, rng):
    p = ArchProfile(arch)
    src = (
        DATA
        + """main:
    dmem d0, a, 64
    dmem d1, b, 64
    dmem d2, c, 64
    vadd.f32 d2, d0, d1
    vmul.f32 d0, d2, d1
    halt
"""
    )
    a = rng.standard_normal(64).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    m, res = run_program(src, arch=arch, inputs={"a": a, "b": b})
    c = a + b
    assert np.array_equal(m.memcpy_d2h("c")[0, 0], c)
    assert np.array_equal(m.memcpy_d2h("a")[0, 0], c * b)
    issue2 = 3 * p["dsd_write"] + p["scalar"]
    begin1 = 3 * p["dsd_write"] + p["vector_startup"]
    end1 = begin1 + k(p, 64)
    begin2 = max(issue2 + p["vector_startup"], end1 + p["vector_gap"], begin1 + p["vector_drain"])
    done2 = begin2 + k(p, 64, "fp32_mul") + p["vector_drain"]
    assert res.cycles == done2 + p["scalar"]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_reduction_returns_its_register_synchronously(arch):
    p = ArchProfile(arch)
    adds = "\n".join("    add r5, r5, 1" for _ in range(4))
    got = timed("    vsum.f32 r6, d0\n" + adds, arch)
    assert got == p["vector_startup"] + k(p, 64) + p["vector_drain"] + 4 * p["scalar"]
