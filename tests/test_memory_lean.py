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


def _union(width, n_colors, edges, ramps):
    """rx, tx bits [n_pe, colors, positions] of a 1-row mesh: edges (from, to, color,
    position), ramps (pe, color, position, 'rx' or 'tx')."""
    n_pe = width
    rx = np.zeros((n_pe, n_colors, 4), np.uint8)
    tx = np.zeros_like(rx)
    for a, b, c, k in edges:
        d = 1 if b == a + 1 else 3  # east, west
        tx[a, c, k] |= 1 << d
        rx[b, c, k] |= 1 << ((d + 2) % 4)
    for p, c, k, side in ramps:
        (rx if side == "rx" else tx)[p, c, k] |= 1 << 4
    return rx, tx


def test_delivery_hops_take_the_longest_path_over_all_switch_positions():
    # color 0: 0 -> 1 -> 2 at position 0, 2 -> 3 at position 1; PE 0 sends, 1 and 3 receive
    edges = [(0, 1, 0, 0), (1, 2, 0, 0), (2, 3, 0, 1)]
    ramps = [(0, 0, 0, "rx"), (1, 0, 0, "tx"), (3, 0, 1, "tx")]
    # color 1: 0 -> 1 at position 0, 1 -> 0 at position 1: a cycle in the union
    edges += [(0, 1, 1, 0), (1, 0, 1, 1)]
    ramps += [(0, 1, 0, "rx"), (1, 1, 0, "tx"), (0, 1, 1, "tx")]
    rx, tx = _union(4, 2, edges, ramps)
    placed = np.ones(4, np.uint8)
    out = np.zeros(8, np.int64)
    rx_any, tx_any = (np.bitwise_or.reduce(a, axis=2) for a in (rx, tx))
    delivery_hops(rx_any, tx_any, placed, 4, 1, np.zeros((3, 4), np.int64), out)
    hops = out.reshape(4, 2)
    assert hops[:, 0].tolist() == [0, 1, 2, 3]
    assert hops[:2, 1].tolist() == [-1, -1]  # unbounded: the mesh's diameter bounds it
    # queue_depth 2, hop 1, ramp_on 1, ramp_off 1: 4 + hops; 0 where nothing is delivered
    caps = queue_storage(rx, tx, placed, 2, 1, 1, 1, 4, 1).reshape(4, 2)
    assert caps[:, 0].tolist() == [0, 4 + 1, 0, 4 + 3]
    assert caps[:, 1].tolist() == [4 + 3, 4 + 3, 0, 0]  # the 4x1 diameter: 3 hops


def test_an_unplaced_pe_sends_nothing_so_it_lengthens_no_ring():
    ramps = [(0, 0, 0, "rx"), (1, 0, 0, "rx"), (2, 0, 0, "tx")]
    rx, tx = _union(3, 1, [(0, 1, 0, 0), (1, 2, 0, 0)], ramps)
    caps = queue_storage(rx, tx, np.array([0, 1, 1], np.uint8), 2, 1, 1, 1, 3, 1)
    assert caps.tolist() == [0, 0, 4 + 1]  # from PE 1 only: 1 hop
