"""Traces (wse_emu/trace.py, engine/events.py): valid trace-event JSON, slices that match
the program and the cost table, filters that filter, the event cap, bad input, and no
change to cycles or bits."""

import json
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import vector_add_cycles
from fuzzkit import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.arch import ArchProfile
from wse_emu.cli import main
from wse_emu.trace import TraceError, TraceOptions, parse_rect, parse_window

REQUIRED = ("name", "ph", "ts", "pid", "tid")
INPUTS = {"vector_add": ("a", "b"), "gemv": ("a", "x"), "gemm_dense": ("a", "b")}
OUTPUTS = {"vector_add": "c", "gemv": "y", "gemm_dense": "c", "row_broadcast": "buf"}


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def launched(name, seed=7):
    """programs/NAME.wsa on its declared mesh, its inputs random, launched."""
    linked = assemble(parse_file(programs.path(name)))
    m = Mesh(linked.width, linked.height)
    m.load(linked)
    rng = np.random.default_rng(seed)
    for sym in INPUTS.get(name, ("src",) if name == "row_broadcast" else ()):
        info = next(im.symbols[sym] for im in linked.images if sym in im.symbols)
        x0, y0, w, h = (0, 0, 1, m.height) if name == "row_broadcast" else (0, 0, m.width, m.height)
        m.memcpy_h2d(sym, rng.uniform(-1, 1, (h, w) + info.shape), x0, y0, w, h)
    m.launch()
    return m


def traced(name, tmp_path, **options):
    m = launched(name)
    path = tmp_path / f"{name}.json"
    result = m.run(trace=TraceOptions(path, **options))
    return m, result, json.loads(path.read_text())


def check_trace(doc):
    """The trace-event format as Perfetto and chrome://tracing read it: required keys per
    phase, non-negative integer durations, time order per track, slices that nest (never
    overlap partly), well-formed counters, a named process for every PE with events."""
    events = doc["traceEvents"]
    assert events
    named = set()
    last = {}
    open_slices = defaultdict(list)
    for e in events:
        for key in REQUIRED:
            assert key in e, (key, e)
        ph = e["ph"]
        assert ph in ("X", "i", "C", "M"), e
        if ph == "M":
            if e["name"] == "process_name":
                named.add(e["pid"])
                assert e["args"]["name"].startswith("PE (")
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= 0, e
        track = (e["pid"], e["tid"]) if ph != "C" else (e["pid"], "C", e["name"])
        assert e["ts"] >= last.get(track, 0), ("time goes back on a track", e)
        last[track] = e["ts"]
        assert e["pid"] in named, e
        if ph == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0, e
            stack = open_slices[track]
            while stack and stack[-1] <= e["ts"]:
                stack.pop()
            end = e["ts"] + e["dur"]
            assert not stack or end <= stack[-1], ("slices overlap partly", e)
            stack.append(end)
        elif ph == "C":
            assert e["args"] and all(isinstance(v, int) and v >= 0 for v in e["args"].values())
        else:
            assert e["s"] in ("t", "p", "g"), e
    return events


def pe_of(doc):
    """pid -> (x, y) from the process names."""
    return {
        e["pid"]: tuple(int(v) for v in e["args"]["name"][4:-1].split(","))
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }


@pytest.mark.parametrize("name", ["vector_add", "gemv", "row_broadcast", "gemm_dense"])
def test_traces_are_valid_trace_event_json(tmp_path, name):
    _, result, doc = traced(name, tmp_path)
    events = check_trace(doc)
    assert doc["otherData"]["clock_hz"] == ArchProfile("wse3").clock_hz
    assert "1 cycle" in doc["otherData"]["time_unit"]
    assert (
        result.trace.events > 0 and result.trace.bytes == (tmp_path / f"{name}.json").stat().st_size
    )
    kinds = {e.get("cat") for e in events}
    assert {"task", "vector"} <= kinds
    if name != "vector_add":
        assert {"wavelet"} <= kinds and any(e["ph"] == "C" for e in events)


def test_vector_add_slices_follow_the_program_and_the_cost_table(tmp_path):
    m, result, doc = traced("vector_add", tmp_path)
    p = ArchProfile("wse3")
    events = check_trace(doc)
    ops = [e for e in events if e.get("cat") == "vector"]
    assert [e["name"] for e in ops] == ["vadd.f16"]  # the program's one vector op
    (op,) = ops
    assert op["dur"] == -(-64 // p["fp16_basic"])  # its SIMD steps: n / width
    # it enters the datapath vector_startup after its issue: three dmem, then the vadd
    assert op["ts"] == 3 * p["dsd_write"] + p["vector_startup"]
    assert op["args"]["elements"] == 64 and "vector_add.wsa" in op["args"]["source"]
    (task,) = [e for e in events if e.get("cat") == "task" and e["ph"] == "X"]
    assert task["name"] == "main" and task["ts"] == 0
    assert task["dur"] == result.cycles == vector_add_cycles()
    (wait,) = [e for e in events if e.get("cat") == "stall"]  # halt waits for the drain
    assert wait["ts"] + wait["dur"] == op["ts"] + op["dur"] + p["vector_drain"]
    assert [e["name"] for e in events if e["ph"] == "i"] == ["halt"]


@pytest.mark.parametrize("name", ["gemv", "gemm_dense", "row_broadcast"])
def test_wavelets_in_the_trace_are_the_stats_wavelets(tmp_path, name):
    _, result, doc = traced(name, tmp_path)
    events = doc["traceEvents"]
    sent = [e for e in events if e["ph"] == "i" and e["name"].startswith("send")]
    arrived = [e for e in events if e["ph"] == "i" and e["name"].startswith("arrive")]
    st = result.stats
    assert len(sent) == st.wavelets_sent.sum() > 0
    assert len(arrived) == st.delivered.sum()
    where = pe_of(doc)
    per_pe = np.zeros_like(st.wavelets_sent)
    for e in sent:
        x, y = where[e["pid"]]
        per_pe[y, x] += 1
    assert (per_pe == st.wavelets_sent).all()


@pytest.mark.parametrize("name", ["gemv", "gemm_dense"])
def test_tracing_changes_no_cycle_and_no_bit(tmp_path, name):
    plain = launched(name)
    ref = plain.run()
    m = launched(name)
    small = m.run(trace=TraceOptions(tmp_path / "small.json", buffer=64))  # many drains
    assert small.cycles == ref.cycles and small.trace.lost == 0
    for field in ("busy", "stalled", "instructions", "wavelets_sent", "links"):
        assert (getattr(small.stats, field) == getattr(ref.stats, field)).all(), field
    out = OUTPUTS[name]
    assert m.memcpy_d2h(out).tobytes() == plain.memcpy_d2h(out).tobytes()
    big = launched(name).run(trace=TraceOptions(tmp_path / "big.json"))
    assert big.cycles == ref.cycles
    # draining 64 events at a time loses or reorders nothing
    assert (tmp_path / "small.json").read_text() == (tmp_path / "big.json").read_text()


def test_filters_keep_only_the_rectangle_and_the_window(tmp_path):
    _, result, doc = traced("row_broadcast", tmp_path, pes="2,1,3x2", cycles="10:30")
    events = check_trace(doc)
    where = pe_of(doc)
    assert set(where.values()) == {(x, y) for x in range(2, 5) for y in range(1, 3)}
    timed = [e for e in events if e["ph"] != "M"]
    assert timed and result.cycles > 30
    for e in timed:
        assert 10 <= e["ts"] and e["ts"] + e.get("dur", 0) <= 30, e
    instants = {e["name"] for e in timed if e["ph"] == "i"}
    assert "arrive c0" in instants and instants <= {"arrive c0", "halt"}  # leaves do not send
    (tmp_path / "whole").mkdir()
    whole = traced("row_broadcast", tmp_path / "whole")[2]
    at = pe_of(whole)
    inside = [
        e
        for e in whole["traceEvents"]
        if e["name"] == "arrive c0" and 10 <= e["ts"] <= 30 and at[e["pid"]] in where.values()
    ]
    assert len(inside) == sum(e["name"] == "arrive c0" for e in timed) > 0


def test_the_event_cap_stops_recording_and_says_where(tmp_path):
    _, result, doc = traced("gemm_dense", tmp_path, max_events=50)
    assert result.ok and result.trace.cut_at is not None
    assert result.trace.events == 50
    assert "event cap" in result.trace.message()
    check_trace(doc)
    r = cli(
        "run",
        programs.path("gemm_dense"),
        "-q",
        "--trace",
        tmp_path / "t.json",
        "--trace-max-events",
        50,
    )
    assert r.exit_code == 0 and "stopped at the event cap near cycle" in r.output


def test_the_cli_writes_a_trace(tmp_path):
    out = tmp_path / "t.json"
    r = cli("run", programs.path("row_broadcast"), "--trace", out)
    assert r.exit_code == 0, r.output
    assert f"trace: wrote {out}" in r.output
    check_trace(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trace", "{tmp}/no/t.json"], "does not exist"),
        (["--trace", "{tmp}"], "is a directory"),
        (["--trace", "{tmp}/t.json", "--trace-pes", "6,2,3x1"], "not inside the 8x4 mesh"),
        (["--trace", "{tmp}/t.json", "--trace-pes", "8,0"], "not inside the 8x4 mesh"),
        (["--trace", "{tmp}/t.json", "--trace-pes", "1;2"], "must look like X,Y,WxH"),
        (["--trace", "{tmp}/t.json", "--trace-cycles", "50:10"], "is empty"),
        (["--trace", "{tmp}/t.json", "--trace-cycles", "5:5"], "is empty"),
        (["--trace", "{tmp}/t.json", "--trace-cycles", "ab"], "must look like A:B"),
        (["--trace-pes", "0,0"], "give --trace FILE too"),
        (["--trace", "{tmp}/t.json", "--trace-max-events", "0"], "Invalid value"),
    ],
)
def test_bad_trace_options_are_usage_errors(tmp_path, args, message):
    r = cli("run", programs.path("row_broadcast"), *[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "t.json").exists()


def test_bad_trace_options_from_python_fail_before_the_run(tmp_path):
    m = launched("row_broadcast")
    for options in (
        TraceOptions(tmp_path / "t.json", pes=(0, 0, 9, 1)),
        TraceOptions(tmp_path / "t.json", cycles=(3, 2)),
        TraceOptions(tmp_path / "t.json", max_events=0),
        TraceOptions(tmp_path / "missing" / "t.json"),
    ):
        with pytest.raises(TraceError):
            m.run(trace=options)
    assert m.stats().cycles == 0  # nothing ran
    assert m.run(trace=tmp_path / "t.json").ok  # a plain path is fine too


def test_a_deadlocked_run_leaves_its_open_tasks_closed_at_its_end(tmp_path):
    m = Mesh(1, 1)
    m.load("main:\n    add r1, r1, 1\n    recv r2, 3\n    halt\n")
    m.launch()
    result = m.run(check=False, trace=tmp_path / "t.json")
    assert result.status == "deadlock"
    events = check_trace(json.loads((tmp_path / "t.json").read_text()))
    (task,) = [e for e in events if e.get("cat") == "task"]
    assert task["name"] == "main (unfinished)" and task["ts"] == 0
    assert task["dur"] == result.cycles > 0


FILTER_TEXT = st.one_of(
    st.text(max_size=16),
    st.from_regex(r"\s?\d{0,3}\s?,\s?\d{0,3}(,\s?\d{0,3}[xX]\d{0,3})?\s?", fullmatch=True),
    st.from_regex(r"\d{0,6}:\d{0,6}", fullmatch=True),
)


@fuzz_settings(300)
@given(FILTER_TEXT, st.integers(1, 70), st.integers(1, 70))
def test_any_filter_text_is_a_rectangle_in_the_mesh_or_a_trace_error(text, width, height):
    try:
        x, y, w, h = parse_rect(text, width, height)
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
        outcome("trace_filter.rect")
    except TraceError as e:
        assert "PE rectangle" in str(e)
        outcome("trace_filter.refused")
    try:
        lo, hi = parse_window(text)
        assert 0 <= lo < hi
        outcome("trace_filter.window")
    except TraceError as e:
        assert "cycle window" in str(e)


def test_a_vector_op_from_an_included_file_names_that_file(tmp_path):
    (tmp_path / "lib.wsa").write_text(".macro twice D\n    vadd.f32 D, D, D\n.endm\n")
    prog = tmp_path / "p.wsa"
    prog.write_text(
        '.include "lib.wsa"\n.data v f32[8]\nmain:\n    dmem d0, v, 8\n    twice d0\n    halt\n'
    )
    out = tmp_path / "t.json"
    r = cli("run", prog, "--trace", out)
    assert r.exit_code == 0, r.output
    ops = [e for e in json.loads(out.read_text())["traceEvents"] if e.get("cat") == "vector"]
    assert [e["args"]["source"] for e in ops] == [f"{tmp_path}/lib.wsa:2: vadd.f32 d0, d0, d0"]
