"""The collectives library (programs/lib/collectives.wsa): broadcast, reduce and allreduce
along rows, columns and the whole mesh give NumPy's results bit for bit in the chain's order
of additions, cost what the textbook model says (within 15%, growing as it says), and its
misuse is a located assembly error."""

import numpy as np
import pytest
from click.testing import CliRunner

from wse_emu import AsmError, Mesh, assemble, programs
from wse_emu.cli import main
from wse_emu.kernels import collectives as coll

SHAPES = [(1, 4), (4, 1), (3, 2), (4, 4)]  # (H, W)


def _bits(a):
    return a.view(np.uint16 if a.dtype == np.float16 else np.uint32)


def _roots(h, w):
    return sorted({(0, 0), (w - 1, h - 1), (w // 2, h // 2)})


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("dim", coll.DIMS)
@pytest.mark.parametrize("kind", coll.KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_results_match_numpy_bit_for_bit(shape, kind, dim, dtype):
    h, w = shape
    rng = np.random.default_rng(h * 10 + w)
    for n, root in zip((1, 37, 8), _roots(h, w)):  # every root, and lengths 1 to 37
        x = (rng.standard_normal((h, w, n)) * 4).astype(dtype)
        out, _ = coll.run(kind, dim, x, root)
        want = coll.reference(kind, dim, x, root)
        assert np.array_equal(_bits(out), _bits(want)), (n, root)


@pytest.mark.parametrize("dim", coll.DIMS)
def test_reference_is_the_sum_within_its_rounding(dim):
    """The reference is not the emulator's mirror: its sums are NumPy's float64 sums within
    (P - 1) roundings of sum |x| (P the PEs summed), and differ from x where a sum lands."""
    h, w, n = 4, 4, 50
    x = np.random.default_rng(0).standard_normal((h, w, n)).astype(np.float32)
    got = coll.reference("allreduce", dim, x, (1, 2))
    axes = {"row": (1,), "col": (0,), "mesh": (0, 1)}[dim]
    exact = x.astype(np.float64).sum(axis=axes, keepdims=True)
    p = int(np.prod([x.shape[a] for a in axes]))
    bound = (
        (p - 1)
        * np.finfo(np.float32).eps
        / 2
        * np.abs(x).astype(np.float64).sum(axis=axes, keepdims=True)
    )
    assert np.all(np.abs(got - exact) <= bound)
    assert not np.array_equal(got, x)


def _cycles(kind, dim, h, w, n, root=(0, 0), dtype=np.float32):
    _, res = coll.run(kind, dim, np.ones((h, w, n), dtype), root)
    return res.cycles


@pytest.mark.parametrize("dim", coll.DIMS)
@pytest.mark.parametrize("kind", coll.KINDS)
def test_cycles_within_15_percent_of_the_model(kind, dim):
    for h, w in [(1, 8), (8, 1), (3, 2), (4, 4), (8, 8)]:
        for n in (16, 256):
            for root in _roots(h, w):
                got = _cycles(kind, dim, h, w, n, root)
                model = coll.model_cycles(kind, dim, w, h, n, root)
                assert abs(got - model) <= 0.15 * model, (h, w, n, root, got, model)


@pytest.mark.parametrize("kind", coll.KINDS)
def test_cycles_grow_with_n_and_the_side_as_the_model_says(kind):
    """Root at an end: one wavelet a cycle, so N more elements cost N more cycles (twice for
    an allreduce, reduce then broadcast); one more PE in the chain costs a ramp off, a hop
    and a ramp on (reduce), one hop latency (broadcast)."""

    def model(n, p):
        return coll.model_cycles(kind, "row", p, 1, n)

    for p in (2, 5):
        assert _cycles(kind, "row", 1, p, 512) - _cycles(kind, "row", 1, p, 128) == model(
            512, p
        ) - model(128, p)
    for n in (16, 300):
        assert _cycles(kind, "row", 1, 9, n) - _cycles(kind, "row", 1, 3, n) == model(n, 9) - model(
            n, 3
        )
    # the column and the whole mesh grow likewise along their sides
    got = _cycles(kind, "mesh", 6, 6, 64) - _cycles(kind, "mesh", 3, 3, 64)
    want = coll.model_cycles(kind, "mesh", 6, 6, 64) - coll.model_cycles(kind, "mesh", 3, 3, 64)
    assert abs(got - want) <= 0.15 * want


def test_a_middle_root_takes_both_streams_through_its_ramp():
    """A root with PEs on both sides runs two ops of N, so N costs twice per element."""
    d_mid = _cycles("reduce", "row", 1, 5, 400, (2, 0)) - _cycles(
        "reduce", "row", 1, 5, 100, (2, 0)
    )
    d_end = _cycles("reduce", "row", 1, 5, 400, (0, 0)) - _cycles(
        "reduce", "row", 1, 5, 100, (0, 0)
    )
    assert (d_mid, d_end) == (600, 300)


def test_allreduce_program_runs_with_no_flags(tmp_path):
    x = np.random.default_rng(2).standard_normal((4, 4, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "s.npy"
    r = CliRunner().invoke(
        main,
        [
            "run",
            str(programs.path("allreduce")),
            "--in",
            f"x={tmp_path / 'x.npy'}",
            "--out",
            f"x={out}",
        ],
    )
    assert r.exit_code == 0, r.output
    want = coll.reference("allreduce", "mesh", x)
    assert np.array_equal(_bits(np.load(out)), _bits(want))


def test_host_allreduce_returns_the_sum_and_the_run():
    x = np.random.default_rng(3).standard_normal((3, 5, 20)).astype(np.float32)
    out, res = coll.allreduce(x, root=(4, 2))
    assert np.array_equal(out, coll.reference("allreduce", "mesh", x, (4, 2)))
    assert res.cycles == _cycles("allreduce", "mesh", 3, 5, 20, (4, 2))


def _text(code, routes):
    return (
        '.include "lib/collectives.wsa"\n.program pe\ncoll_params\n.data buf f32[8]\nmain:\n'
        f"    {code}\n    halt\n.layout\ncoll_place pe\n{routes}\n"
    )


def _asm(text, w=4, h=2):
    return assemble(text, w, h, filename=str(programs.DIR / "user.wsa"))


@pytest.mark.parametrize(
    "code,routes,line",
    [
        ("row_reduce 32, 0, 1, 4, buf, buf, 8", "row_reduce_routes 0, 1, 0", 6),
        ("row_reduce 32, 0, 1, 0, buf, buf, 8", "row_reduce_routes 0, 1, -1", 10),
        ("col_bcast 32, 2, 2, buf, 8", "col_bcast_routes 2, 0", 6),
        ("row_bcast 32, 2, 0, buf, 8", "col_bcast_routes 2, 5", 10),
    ],
)
def test_a_root_outside_the_mesh_is_an_error_at_the_macros_use(code, routes, line):
    with pytest.raises(AsmError) as e:
        _asm(_text(code, routes))
    msg = str(e.value)
    assert "collective_root_outside_the_mesh" in msg
    assert f"user.wsa:{line}:" in msg  # the line that used the macro


def test_wrong_number_of_arguments_is_located():
    with pytest.raises(AsmError) as e:
        _asm(_text("row_reduce 32, 0, 1, 0, buf, 8", "row_reduce_routes 0, 1, 0"))
    assert "takes 7 arguments, got 6" in str(e.value) and "user.wsa:6:" in str(e.value)


def test_the_library_ships_with_the_package():
    assert (programs.DIR / "lib" / "collectives.wsa").is_file()
    assert "allreduce" in programs.names() and "collectives" not in programs.names()


def _two_broadcasts(asynchronous):
    """A row broadcast of a from column 1 and a column broadcast of b from row 1, on
    microthreads 0 and 1 (the task `both` runs once both are in) or one after the other."""
    code = (
        "    block both\n"
        "    row_bcast_async 0, got_row, 32, 0, 1, a, 64\n"
        "    col_bcast_async 1, got_col, 32, 1, 1, b, 64\n    ret\n"
        ".task got_row\n    activate both\n    ret\n"
        ".task got_col\n    unblock both\n    ret\n.task both\n    halt\n"
        if asynchronous
        else "    row_bcast 32, 0, 1, a, 64\n    col_bcast 32, 1, 1, b, 64\n    halt\n"
    )
    text = (
        '.include "lib/collectives.wsa"\n.program pe\ncoll_params\n.data a f32[64]\n'
        f".data b f32[64]\nmain:\n{code}.layout\ncoll_place pe\n"
        "row_bcast_routes 0, 1\ncol_bcast_routes 1, 1\n"
    )
    mesh = Mesh(3, 2)
    mesh.load(_asm(text, 3, 2))
    a = np.random.default_rng(4).standard_normal((2, 3, 64)).astype(np.float32)
    mesh.memcpy_h2d("a", a)
    mesh.memcpy_h2d("b", -a)
    mesh.launch()
    res = mesh.run()
    assert np.array_equal(mesh.memcpy_d2h("a"), np.broadcast_to(a[:, 1:2], a.shape))
    assert np.array_equal(mesh.memcpy_d2h("b"), np.broadcast_to(-a[1:2], a.shape))
    return res.cycles


def test_async_broadcasts_run_side_by_side_on_microthreads():
    """Both streams enter a PE through its one ramp, so side by side they take about as
    long as one after the other, less the second op's set-up and start-up."""
    sync, asyn = _two_broadcasts(False), _two_broadcasts(True)
    assert 2 * 64 <= asyn < sync  # the ramp's bound: 128 wavelets into a PE


@pytest.mark.parametrize(
    "args,match",
    [
        (("allreduce", "mesh", np.ones((2, 3, 4), np.float32), (3, 0)), "outside the 3x2"),
        (("reduce", "row", np.ones((2, 3, 4), np.float32), (0, -1)), "outside"),
        (("reduce", "diag", np.ones((2, 3, 4), np.float32)), "dim one of"),
        (("bcast", "row", np.ones((3, 4), np.float32)), r"\(H, W, N\)"),
        (("bcast", "row", np.ones((1, 2, 4)), (0, 0), "wse3", np.int32), "float32 or float16"),
    ],
)
def test_host_refuses_bad_input_with_a_clear_error(args, match):
    with pytest.raises(ValueError, match=match):
        coll.run(*args)


MOVING = """.const N = 8
.const ROOTS = 2
.include "lib/collectives.wsa"
.program pe
bcast_moving_params
.data x f32[N]
.data bufr f32[ROOTS, N]         ; step k's row broadcast lands in bufr[k]
.data bufc f32[ROOTS, N]         ; and its column broadcast in bufc[k]
main:
    mov r10, %x
    mov r11, %y
    mov r12, 0
    dmem d0, x, N
    dfout d2, 0, N
    dfin d3, 0, N
    dfout d4, 1, N
    dfin d5, 1, N
    block next
step:
    mul r13, r12, N * 4
    add r14, r13, bufc
    add r13, r13, bufr
    dmem d1, [r13], N
    dmem d6, [r14], N
    beq r10, r12, row_root
    bcast_moving_recv async, 0, next, 32, d1, d3
    jmp col
row_root:
    vmov.f32 d1, d0
    bcast_moving_send 0, row_sent, 32, 0, TIN_R, d2, d0, r10, WIDTH, r3, row_alone
    jmp col
row_alone:
    activate next
col:
    beq r11, r12, col_root
    bcast_moving_recv async_unblock, 1, next, 32, d6, d5
    ret
col_root:
    vmov.f32 d6, d0
    bcast_moving_send 1, col_sent, 32, 1, TIN_C, d4, d0, r11, HEIGHT, r3, col_alone
    ret
col_alone:
    unblock next
    ret
.task row_sent
    bcast_moving_sent 0, TOUT_R, r10, ROOTS, row_done
row_done:
    activate next
    ret
.task col_sent
    bcast_moving_sent 1, TOUT_C, r11, ROOTS, col_done
col_done:
    unblock next
    ret
.task next
    block next
    add r12, r12, 1
    blt r12, ROOTS, step
    halt
.layout
bcast_moving_place pe, 2, 4
row_bcast_moving_routes 0, 2, ROOTS
col_bcast_moving_routes 1, 4, ROOTS
"""


def _moving(w, h, roots, n=8, arch="wse3"):
    """Every PE's x (H, W, N); step k = 0 .. roots - 1 broadcasts column k's x along every
    row and row k's x down every column, both at once, on microthreads 0 and 1."""
    x = np.random.default_rng(w * 7 + h).standard_normal((h, w, n)).astype(np.float32)
    mesh = Mesh(w, h, arch)
    linked = assemble(
        MOVING,
        w,
        h,
        arch,
        filename=str(programs.DIR / "moving.wsa"),
        consts={"N": n, "ROOTS": roots},
    )
    mesh.load(linked)
    mesh.memcpy_h2d("x", x)
    mesh.launch()
    res = mesh.run()
    rows = mesh.memcpy_d2h("bufr").reshape(h, w, roots, n)
    cols = mesh.memcpy_d2h("bufc").reshape(h, w, roots, n)
    return x, rows, cols, res


@pytest.mark.parametrize("w,h,roots", [(4, 3, 3), (3, 4, 2), (1, 3, 1), (3, 1, 1), (5, 5, 5)])
def test_moving_root_broadcasts_deliver_every_steps_root(w, h, roots):
    x, rows, cols, res = _moving(w, h, roots)
    for k in range(roots):
        assert np.array_equal(rows[:, :, k], np.broadcast_to(x[:, k : k + 1], x.shape)), k
        assert np.array_equal(cols[:, :, k], np.broadcast_to(x[k : k + 1], x.shape)), k
    again = _moving(w, h, roots)
    assert again[3].cycles == res.cycles and np.array_equal(again[1], rows)


def test_moving_root_steps_follow_one_another():
    """A step's broadcasts stream N wavelets into every receiver through its one ramp, and
    a root sends only after the previous root's token: steps add up, none overlap whole."""
    n = 64
    one = _moving(4, 4, 1, n)[3].cycles
    three = _moving(4, 4, 3, n)[3].cycles
    assert three >= one + 2 * 2 * n  # two more steps, each two N-wavelet streams via a ramp
    assert _moving(4, 4, 3, 2 * n)[3].cycles > three


@pytest.mark.parametrize(
    "edit,needle",
    [
        (("moving_routes 0, 2, ROOTS", "moving_routes 0, 2, 5"), "root_outside_the_mesh"),
        (("moving_routes 1, 4, ROOTS", "moving_routes 1, 4, 0"), "root_outside_the_mesh"),
        (("32, d1, d3", "64, d1, d3"), "collective_element_type_must_be_16_32_or_minus_32"),
    ],
)
def test_moving_root_misuse_is_an_error_at_the_macros_use(edit, needle):
    line = next(i for i, text in enumerate(MOVING.splitlines(), 1) if edit[0] in text)
    with pytest.raises(AsmError) as e:
        assemble(MOVING.replace(*edit), 4, 4, filename=str(programs.DIR / "moving.wsa"))
    assert needle in str(e.value) and f"moving.wsa:{line}:" in str(e.value)
