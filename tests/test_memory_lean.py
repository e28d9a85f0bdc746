"""The mesh state is sized by what the program uses: each PE's SRAM row ends with the data
its images declare, an access past it is a located fault (never served, never out of
bounds), and the memory guard's estimate follows the same footprint."""

import numpy as np
import pytest

from wse_emu import Mesh
from wse_emu.debug import DebugError, Session
from wse_emu.engine.fabric import delivery_hops, queue_storage
from wse_emu.engine.state import VIEW_FIELDS
from wse_emu.memory import Footprint, per_pe_bytes, sram_footprint, state_bytes


def _declaring(n, body="    halt"):
    return f".data a f32[{n}]\n.data b i16[3]\nmain:\n{body}\n"


def _run(src, width=1, height=1):
    mesh = Mesh(width, height)
    mesh.load(src)
    mesh.launch()
    return mesh, mesh.run(max_cycles=10_000, check=False)


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_the_sram_row_ends_with_the_declared_data(n):
    mesh = Mesh(2, 1)
    mesh.load(_declaring(n))
    end = 4 * n + 6  # a: n f32; b: 3 i16, 4-byte aligned after a
    assert mesh.state.sram8.shape == (2, (end + 3) // 4 * 4)
    assert sram_footprint(mesh.program.images) == mesh.state.sram8.shape[1]


def test_the_row_is_the_largest_footprint_over_the_images():
    src = """
.program small
.data s f32[2]
main:
    halt
.program big
.data g i32[100]
main:
    halt
.layout
.place small at 0, 0 size 1, 1
.place big at 1, 0 size 1, 1
"""
    mesh = Mesh(2, 1)
    mesh.load(src)
    assert mesh.state.sram8.shape[1] == 400


def test_state_bytes_grow_with_the_footprint_not_with_the_sram_size():
    arch = Mesh(1, 1).arch
    small, large = (per_pe_bytes(arch, 10, sram_footprint([_Img(b)])) for b in (64, 4096))
    assert large - small == 4096 - 64
    assert small < arch["sram_bytes"]


class _Img:
    def __init__(self, data_bytes):
        self.data_bytes = data_bytes


@pytest.mark.parametrize(
    "prog, width, height",
    [("row_broadcast", 8, 4), ("gemm_dense", 4, 4)],  # gemm_dense: microthread rows too
)
def test_the_memory_estimate_is_the_state_actually_allocated(prog, width, height):
    """memory.check_memory refuses a mesh on state_bytes: it must be what load allocates."""
    mesh = Mesh(width, height)
    mesh.load(f"programs/{prog}.wsa")
    S, linked = mesh.state, mesh.program
    allocated = sum(a.nbytes for f, a in zip(S._fields, S) if f not in VIEW_FIELDS)
    allocated += linked.rx.nbytes + linked.tx.nbytes + linked.pe_image.nbytes
    n_pe = width * height
    use = Footprint(len(S.code), len(S.qpay), S.sram8.shape[1], len(S.pe) - n_pe)
    use = use._replace(images=len(linked.images))
    assert state_bytes(n_pe, mesh.arch, use) == allocated
    assert S.sram8.shape[1] < mesh.arch["sram_bytes"] // 4  # the footprint, not 48 KiB


@pytest.mark.parametrize(
    "body, line, arg",
    [
        ("    mov r1, 40\n    ld.i32 r0, [a + r1]\n    halt", 5, "byte address 40"),
        ("    mov r1, 5\n    st.i32 [a + 40], r1\n    halt", 5, "byte address 40"),
        (
            "    dmem d0, a, 20\n    dmem d1, a, 20\n    vadd.f32 d0, d1, d1\n    halt",
            6,
            "DSD register d0, an element at byte address 76",
        ),
    ],
)
def test_an_access_past_the_declared_data_is_a_located_fault(body, line, arg):
    src = _declaring(8, body)  # a: bytes 0-31, b: 32-37, row 40 bytes
    mesh, result = _run(src)
    assert result.status == "fault"
    assert "runtime fault at PE (0,0) pc " in result.report
    assert f"<input>:{line}: " in result.report
    assert "beyond the data the program declares" in result.report
    assert f"({arg}); declared: bytes 0-39 of the PE's {mesh.arch['sram_bytes']}" in result.report


def test_an_access_past_the_real_sram_is_still_out_of_range():
    size = Mesh(1, 1).arch["sram_bytes"]
    _, result = _run(_declaring(2, f"    mov r1, {size}\n    ld.i32 r0, [r1]\n    halt"))
    assert result.status == "fault" and "SRAM access out of range" in result.report


def test_a_program_without_data_faults_on_any_access():
    _, result = _run("main:\n    mov r1, 8\n    ld.i32 r0, [r1]\n    halt\n")
    assert result.status == "fault"
    assert "declared: none of the PE's" in result.report


def test_the_declared_data_is_read_and_written_as_before():
    body = "    mov r1, 7\n    st.i32 [b - 4 + 4], r1\n    ld.i16 r2, [b]\n    halt"
    mesh, result = _run(_declaring(8, body))
    assert result.status == "done"
    assert int(mesh.state.regs[0, 2]) == 7
    assert mesh.memcpy_d2h("b").reshape(-1).tolist() == [7, 0, 0]


def test_the_debugger_names_memory_past_the_declared_data():
    mesh = Mesh(1, 1)
    mesh.load(_declaring(8))
    mesh.launch()
    s = Session(mesh)
    assert s.examine(2, "f32", "a")  # declared: fine
    with pytest.raises(DebugError, match="beyond the 40 bytes of data the program declares"):
        s.examine(4, "i32", "36")
    with pytest.raises(DebugError, match="beyond the 40 bytes"):
        s.watch_symbol("40")
    with pytest.raises(DebugError, match="outside SRAM"):
        s.examine(1, "i32", str(mesh.arch["sram_bytes"]))


def test_memcpy_round_trips_through_the_lean_row():
    mesh = Mesh(3, 2)
    mesh.load(_declaring(5))
    vals = np.arange(30, dtype=np.float32).reshape(2, 3, 5)
    mesh.memcpy_h2d("a", vals)
    assert np.array_equal(mesh.memcpy_d2h("a"), vals)


def _ring_sizes(mesh):
    return np.diff(mesh.state.qoff).reshape(mesh.height, mesh.width, -1)


def test_summa_rings_hold_the_path_from_its_roots_not_the_rows_length():
    """gemm_dense on 12x3 with 2 panels of K: A's roots are columns 0 and 1, whose routers
    alone take positions 1 and 2 (the broadcast turns back west only there), so PE (x, y)
    is at most max(x, 1) hops from a sender of A; the union of the switch positions' routes
    has a cycle, which would make every ring the mesh's diameter (12 + 3 - 2 hops)."""
    from wse_emu import programs
    from wse_emu.asm import assemble, parse_file

    mesh = Mesh(12, 3)
    a = mesh.arch
    consts = {"MT": 1, "KT": 1, "NT": 1, "STEPS": 2}
    mesh.load(assemble(parse_file(programs.path("gemm_dense")), 12, 3, a, consts=consts))
    fixed = a["queue_depth"] + a["ramp_on"] + a["ramp_off"]
    hops = np.maximum(np.arange(12), 1)
    want = np.broadcast_to(fixed + a["hop_latency"] * hops, (3, 12))
    assert np.array_equal(_ring_sizes(mesh)[:, :, 0], want)  # color A = 0


@pytest.mark.parametrize("width, height", [(8, 4), (16, 2)])
def test_a_queue_ring_holds_the_longest_path_that_delivers_into_it(width, height):
    """row_broadcast: PE (x, y) receives ROW (color 0) from (0, y) only, x hops away; the
    ring holds queue_depth plus one wavelet per pipeline stage of that path (dest_room's
    bound), however large the mesh."""
    mesh = Mesh(width, height)
    mesh.load("programs/row_broadcast.wsa")
    a = mesh.arch
    caps = _ring_sizes(mesh)
    x = np.arange(width)
    want = a["queue_depth"] + a["ramp_on"] + a["ramp_off"] + a["hop_latency"] * x
    want[0] = 0  # the root only sends
    assert np.array_equal(caps[:, :, 0], np.broadcast_to(want, (height, width)))
    assert not caps[:, :, 1:].any()  # no other color is delivered


N, E, S, W, RAMP = 0, 1, 2, 3, 4  # route bit numbers


def _routes(n_pe, n_colors, rules):
    """rx, tx bits [n_pe, colors, positions] from rules (pe, color, position, rx side,
    tx sides)."""
    rx = np.zeros((n_pe, n_colors, 4), np.uint8)
    tx = np.zeros_like(rx)
    for p, c, k, r, ts in rules:
        rx[p, c, k] |= 1 << r
        for t in ts:
            tx[p, c, k] |= 1 << t
    return rx, tx


def _hops(rx, tx, width, height, placed=None):
    n_pe, n_colors = rx.shape[:2]
    placed = np.ones(n_pe, np.uint8) if placed is None else placed
    out = np.zeros(n_pe * n_colors, np.int64)
    rx, tx = (a.reshape(n_pe * n_colors, -1) for a in (rx, tx))  # the state's layout
    delivery_hops(rx, tx, placed, width, height, np.zeros((3, n_pe * 5), np.int64), out)
    return out.reshape(n_pe, n_colors)


def test_delivery_hops_take_the_longest_path_over_all_switch_positions():
    # 4x1, color 0: PE 0 sends east at position 0, PEs 1 and 2 pass it on (2 at position 1)
    # and 1 and 3 receive
    rules = [(0, 0, 0, RAMP, [E]), (1, 0, 0, W, [E, RAMP]), (2, 0, 1, W, [E]), (3, 0, 1, W, [RAMP])]
    rx, tx = _routes(4, 1, rules)
    assert _hops(rx, tx, 4, 1)[:, 0].tolist() == [0, 1, 2, 3]
    # queue_depth 2, hop 1, ramp_on 1, ramp_off 1: 4 + hops; 0 where nothing is delivered
    caps = queue_storage(rx, tx, np.ones(4, np.uint8), 2, 1, 1, 1, 4, 1)
    assert caps.tolist() == [0, 4 + 1, 0, 4 + 3]


def test_a_broadcast_whose_root_moves_is_no_cycle():
    # SUMMA's row color on 5x1: position 0 the root is west, 1 here, 2 east. The union of the
    # positions has 0 -> 1 -> 0; no router turns a wavelet back at one position, so the
    # longest path into x is from the far end: max(x, 4 - x) hops
    rules = []
    for x in range(5):
        rules += [(x, 0, 0, W, [E, RAMP]), (x, 0, 1, RAMP, [E, W]), (x, 0, 2, E, [W, RAMP])]
    rx, tx = _routes(5, 1, rules)
    assert _hops(rx, tx, 5, 1)[:, 0].tolist() == [4, 3, 2, 3, 4]
    # only PE 0 may send (the others are not placed): the paths run east from it
    assert _hops(rx, tx, 5, 1, np.array([1, 0, 0, 0, 0], np.uint8))[:, 0].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_a_route_cycle_is_unbounded():
    # 2x2: 0 -> 1 -> 3 -> 2 -> 0 (east, south, west, north) at position 0; PE 0 sends at 1
    rules = [(0, 0, 1, RAMP, [E]), (0, 0, 0, S, [E]), (1, 0, 0, W, [S, RAMP])]
    rules += [(3, 0, 0, N, [W]), (2, 0, 0, E, [N])]
    rx, tx = _routes(4, 1, rules)
    assert _hops(rx, tx, 2, 2)[:, 0].tolist() == [-1, -1, -1, -1]
    # the ring is the 2x2 mesh's diameter (2 hops) at most
    caps = queue_storage(rx, tx, np.ones(4, np.uint8), 2, 1, 1, 1, 2, 2)
    assert caps.tolist() == [0, 4 + 2, 0, 0]


def test_an_unplaced_pe_sends_nothing_so_it_lengthens_no_ring():
    rules = [(0, 0, 0, RAMP, [E]), (1, 0, 0, RAMP, [E]), (1, 0, 1, W, [E]), (2, 0, 0, W, [RAMP])]
    rx, tx = _routes(3, 1, rules)
    caps = queue_storage(rx, tx, np.array([0, 1, 1], np.uint8), 2, 1, 1, 1, 3, 1)
    assert caps.tolist() == [0, 0, 4 + 1]  # from PE 1 only: 1 hop


# ---------------------------------------------------------------- wse-emu info --memory


def _cli(*args):
    from click.testing import CliRunner

    from wse_emu.cli import main

    return CliRunner().invoke(main, [*map(str, args)])


def _memory(tmp_path, *args):
    import json

    out = tmp_path / "m.json"
    r = _cli("info", "--memory", *args, "--json", out)
    assert r.exit_code == 0, r.output
    return r.output, json.loads(out.read_text())


@pytest.mark.parametrize("prog, mesh", [("row_broadcast", "8x4"), ("gemm_dense", "4x4")])
def test_info_memory_is_what_load_allocates_part_by_part(prog, mesh, tmp_path):
    out, rec = _memory(tmp_path, f"programs/{prog}.wsa", "--mesh", mesh)
    w, h = map(int, mesh.split("x"))
    m = Mesh(w, h)
    m.load(f"programs/{prog}.wsa")
    S, linked = m.state, m.program
    allocated = sum(a.nbytes for f, a in zip(S._fields, S) if f not in VIEW_FIELDS)
    allocated += linked.rx.nbytes + linked.tx.nbytes + linked.pe_image.nbytes
    assert rec["state_bytes"] == sum(rec["parts"].values()) == allocated
    assert rec["parts"]["input-queue rings"] == 21 * len(S.qpay)  # payload, 2 times, flag
    assert rec["parts"]["SRAM (declared data)"] == w * h * S.sram8.shape[1]
    assert f"{allocated:,} bytes" in out and "per PE" in out


def test_info_memory_grows_with_the_footprint_not_the_sram_or_the_mesh(tmp_path):
    """SRAM with the data declared (N fp32 values), not 48 KiB; a row broadcast's rings
    with the row's length, not with the number of rows."""
    per_pe = {}
    for n, mesh in [(32, "16x4"), (1024, "16x4"), (32, "16x32"), (32, "64x4")]:
        _, rec = _memory(
            tmp_path, "programs/row_broadcast.wsa", "--mesh", mesh, "--const", f"N={n}"
        )
        per_pe[n, mesh] = rec
    assert per_pe[32, "16x4"]["sram_row_bytes"] == 4 * 32
    assert per_pe[1024, "16x4"]["sram_row_bytes"] == 4 * 1024
    grown = per_pe[1024, "16x4"]["state_bytes"] - per_pe[32, "16x4"]["state_bytes"]
    assert grown == 64 * 4 * (1024 - 32)  # only the SRAM rows grew, by the data declared
    rings = {k: r["max_queue_slots"] for k, r in per_pe.items()}
    assert rings[32, "16x32"] == rings[32, "16x4"] < rings[32, "64x4"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "--mesh", "4x4"], "--mesh goes with --memory PROG"),
        (["info", "--const", "N=3"], "--const goes with --memory PROG"),
        (["info", "--memory", "nowhere.wsa"], "nowhere.wsa"),
        (["info", "--memory", "programs/gemv.wsa", "--mesh", "0x4"], "--mesh"),
        (["info", "--memory", "programs/gemv.wsa", "--json", "/no/dir/m.json"], "--json"),
    ],
)
def test_info_memory_bad_input_is_a_clear_error(args, message):
    r = _cli(*args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
