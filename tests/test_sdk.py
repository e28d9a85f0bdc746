"""wse_emu.sdk.SdkRuntime: Cerebras-shaped host calls mapped onto Mesh."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from wse_emu.sdk import MemcpyDataType, MemcpyOrder, SdkError, SdkRuntime

ROOT = Path(__file__).resolve().parents[1]
ROW, COL = MemcpyOrder.ROW_MAJOR, MemcpyOrder.COLUMN_MAJOR
B32, B16 = MemcpyDataType.MEMCPY_32BIT, MemcpyDataType.MEMCPY_16BIT

GRID = """.mesh 3x2
.data v f16[4]
.data w f32[5]
.data out i32[2]
.text
main:
    halt
store_args:
    st.i32 [out], r1
    st.i32 [out + 4], r2
    halt
"""


def started(src=GRID, **kw):
    r = SdkRuntime(src, **kw)
    r.load()
    r.run()
    return r


def test_the_readme_host_script_runs_and_matches_numpy(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    script = re.findall(r"```python\n(from wse_emu.sdk import.*?)```", readme, re.S)[0]
    monkeypatch.chdir(ROOT)
    exec(compile(script, "README.md", "exec"), {})  # asserts against A @ x + b itself


@pytest.mark.parametrize("order", [ROW, COL])
def test_memcpy_orders_lay_out_height_width_elements(order, rng):
    r = started()
    w, h, n = 2, 2, 3
    host = rng.standard_normal(w * h * n).astype(np.float32)
    r.memcpy_h2d("w", host, 1, 0, w, h, n, order=order, data_type=B32)
    got = r.mesh.memcpy_d2h("w", 1, 0, w, h)[..., :n]
    assert np.array_equal(got, host.reshape((h, w, n), order=order.value))
    back = np.zeros_like(host)
    r.memcpy_d2h(back, "w", 1, 0, w, h, n, order=order, data_type=B32)
    assert np.array_equal(back, host)
    assert np.all(r.mesh.memcpy_d2h("w", 0, 0, 1, 2) == 0)  # outside the rectangle


def test_16_bit_symbols_travel_in_the_low_half_of_32_bit_words_or_as_16_bit(rng):
    r = started()
    vals = rng.standard_normal(3 * 2 * 4).astype(np.float16)
    words = vals.view(np.uint16).astype(np.uint32) | 0xABCD0000  # high halves are ignored
    r.memcpy_h2d("v", words, 0, 0, 3, 2, 4, data_type=B32)
    assert np.array_equal(r.mesh.memcpy_d2h("v").ravel().view(np.uint16), vals.view(np.uint16))
    out32 = np.zeros(24, np.uint32)
    r.memcpy_d2h(out32, "v", 0, 0, 3, 2, 4, data_type=B32)
    assert np.array_equal(out32, vals.view(np.uint16).astype(np.uint32))
    out16 = np.zeros(24, np.float16)
    r.memcpy_d2h(out16, "v", 0, 0, 3, 2, 4, data_type=B16)
    assert np.array_equal(out16.view(np.uint16), vals.view(np.uint16))


def test_launch_runs_a_label_with_integer_arguments_and_writes_sim_stats(tmp_path):
    r = started(stats_dir=tmp_path)
    res = r.launch("store_args", 7, -3)
    assert res.status == "done"
    out = np.zeros(12, np.int32)
    r.memcpy_d2h(out, "out", 0, 0, 3, 2, 2)
    assert out.tolist() == [7, -3] * 6
    r.stop()
    stats = json.loads((tmp_path / "sim_stats.json").read_text())
    assert stats == r.sim_stats()
    assert stats["cycle_count"] == res.cycles and stats["pe_count"] == 6
    assert {"cycle_count", "idle_ce_cycles", "stall_count", "wavelet_count"} <= set(stats)


def test_bad_calls_are_clear_errors():
    with pytest.raises(SdkError, match="cmaddr"):
        SdkRuntime(GRID, "10.0.0.1:9000")
    r = SdkRuntime(GRID)
    with pytest.raises(SdkError, match="load"):
        r.memcpy_h2d("w", np.zeros(5, np.float32), 0, 0, 1, 1, 5)
    r.load()
    with pytest.raises(SdkError, match="call run"):
        r.launch("store_args")
    r.run()
    with pytest.raises(SdkError, match="no symbol 'q'.*symbols: out, v, w"):
        r.get_id("q")
    with pytest.raises(SdkError, match="no program on the mesh has a label 'nope'"):
        r.launch("nope")
    with pytest.raises(SdkError, match="argument 1 must be an integer"):
        r.launch("store_args", 1.5)
    with pytest.raises(SdkError, match="dest is the color the wavelets go on"):
        r.memcpy_h2d("w", np.zeros(5, np.float32), 0, 0, 1, 1, 5, streaming=True)
    with pytest.raises(SdkError, match="has 4 elements; w \\* h \\* elem_per_pe = 5"):
        r.memcpy_h2d("w", np.zeros(4, np.float32), 0, 0, 1, 1, 5)
    with pytest.raises(SdkError, match="64-bit elements .* MEMCPY_32BIT"):
        r.memcpy_h2d("w", np.zeros(5), 0, 0, 1, 1, 5)
    with pytest.raises(SdkError, match="symbol 'w' has 5 elements"):
        r.memcpy_h2d("w", np.zeros(6, np.float32), 0, 0, 1, 1, 6)
    with pytest.raises(SdkError, match="writable NumPy array"):
        r.memcpy_d2h([0.0] * 5, "w", 0, 0, 1, 1, 5)
    with pytest.raises(ValueError, match="not inside the 3x2 mesh"):
        r.memcpy_h2d("w", np.zeros(5, np.float32), 3, 0, 1, 1, 5)
    r.stop()
    with pytest.raises(SdkError, match="stopped"):
        r.launch("store_args")
