"""Control wavelets (`sendctl`) and control tasks (`.task NAME control ID`): switch positions
moved along the wavelet's path, a control task started at the destination behind the
data before it (the end-of-stream pattern), and the errors for bad programs."""

import numpy as np
import pytest
from conftest import run_program
from hypothesis import given, settings
from hypothesis import strategies as st

from wse_emu import AsmError, Mesh, RunError, assemble, isa
from wse_emu.arch import ArchProfile
from wse_emu.asm.disasm import disassemble

ARCH = ArchProfile("wse3")


def cost(mnemonic):
    """Cycles of one scalar instruction by the cost table."""
    return ARCH[isa.by_mnemonic()[mnemonic].cost_class(None)]


def land(t_send, hops):
    """Cycle a wavelet sent at t_send lands in a queue hops links away (no contention)."""
    return t_send + ARCH["ramp_on"] + hops * ARCH["hop_latency"] + ARCH["ramp_off"]


# A chain of 3 PEs on color 0: the sender (0,0) and two receivers. The middle router
# delivers to its own PE at position 0 and passes east to (2,0) at position 1.
SINK = """
.program {name}
.data got i32[4]
.data at i32[4]
main:
    mov r3, 0
    beq r3, 4 * {n}, done
more:
    recv r1, 0
    mov r2, %cycle
    st.i32 [r3 + got], r1
    st.i32 [r3 + at], r2
    add r3, r3, 4
    blt r3, 4 * {n}, more
done:
    halt
"""
CHAIN_LAYOUT = """
.layout
.place sender at 0, 0 size 1, 1
.place mid at 1, 0 size 1, 1
.place end at 2, 0 size 1, 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 pos 0 at 1, 0 size 1, 1 rx west tx ramp
.route 0 pos 1 at 1, 0 size 1, 1 rx west tx east
.route 0 at 2, 0 size 1, 1 rx west tx ramp
"""


def _chain(body, n_mid, n_end):
    """Run the chain with the sender's body; the middle PE takes n_mid wavelets, the end
    n_end. Returns (values, receive cycles) at the middle and at the end."""
    src = f".program sender\nmain:\n{body}\n    halt\n"
    for name, n in (("mid", n_mid), ("end", n_end)):
        src += SINK.replace("{name}", name).replace("{n}", str(n))
    m, _ = run_program(src + CHAIN_LAYOUT, mesh=(3, 1))
    got, at = m.memcpy_d2h("got", 1, 0, 2, 1)[0], m.memcpy_d2h("at", 1, 0, 2, 1)[0]
    return (got[0, :n_mid], at[0, :n_mid]), (got[1, :n_end], at[1, :n_end])


def test_control_wavelet_advances_the_middle_router_so_the_next_wavelet_goes_on():
    w = cost("send")
    (mid, mid_at), (end, end_at) = _chain(
        "    send 0, 11\n    sendctl 0, advance\n    send 0, 22", n_mid=1, n_end=1
    )
    assert mid.tolist() == [11] and end.tolist() == [22]
    # the first wavelet crossed one link; the third, sent after two wavelet-cost
    # instructions, two (through the advanced middle router); recv costs one wavelet
    assert mid_at.tolist() == [land(0, 1) + w]
    assert end_at.tolist() == [land(2 * w, 2) + w]


@pytest.mark.parametrize(
    "second, third_to_mid",
    [("reset", True), ("advance", True), ("keep", False)],
)
def test_reset_advance_wraps_and_keep(second, third_to_mid):
    """After one advance the middle router passes east; a reset, or a second advance (two
    configured positions: it wraps), brings the third wavelet back to the middle PE."""
    body = "\n".join(
        f"    {line}"
        for line in ("send 0, 1", "sendctl 0, advance", "send 0, 2", f"sendctl 0, {second}")
    )
    body += "\n    send 0, 3"
    n_mid, n_end = (2, 1) if third_to_mid else (1, 2)
    (mid, _), (end, _) = _chain(body, n_mid, n_end)
    if third_to_mid:
        assert mid.tolist() == [1, 3] and end.tolist() == [2]
    else:
        assert mid.tolist() == [1] and end.tolist() == [2, 3]


def test_a_switch_moved_by_a_control_wavelet_and_by_switch_agree():
    """`sendctl advance` from the sender moves the middle router as `switch 0, 1` on the
    middle PE would: the sender's own router (one position) stays where it is."""
    (mid, _), (end, _) = _chain(
        "    sendctl 0, advance\n    send 0, 7\n    send 0, 8", n_mid=0, n_end=2
    )
    assert end.tolist() == [7, 8] and mid.size == 0


PAIR = """
.program sender
.data src i32[{n}]
main:
    dmem  d0, src, {n}
    dfout d1, 0, {n}
    vmov.i32 d1, d0          ; stream the data
    sendctl 0, keep, 5       ; end of stream: start control task 5 at the destination
    halt

.program sink
.data sum i32[1]
.data count i32[1]
.data fin i32[3]
main:
    mov r5, 0
    mov r6, 0
    ret
.task on_data color 0
    add r5, r5, r0
    add r6, r6, 1
    ret
.task done control 5
    mov r7, %cycle
    st.i32 [sum], r5
    st.i32 [count], r6
    st.i32 [fin], r0
    st.i32 [fin + 4], r7
    halt

.layout
.place sender at 0, 0 size 1, 1
.place sink at {x}, 0 size 1, 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.repeat X = 1, {x}
.route 0 at X, 0 size 1, 1 rx west tx east
.end
.route 0 at {x}, 0 size 1, 1 rx west tx ramp
"""


def _pair(n, x=1, lag=None):
    """Stream n values from (0,0) to the sink at (x,0), then the control wavelet. Returns
    (mesh, result, the values sent)."""
    src = PAIR.replace("{n}", str(n)).replace("{x}", str(x))
    sent = (np.arange(1, n + 1) * 3).astype(np.int32)
    m = Mesh(x + 1, 1, overrides={"lag_window": lag} if lag else None)
    m.load(assemble(src, x + 1, 1, m.arch))
    m.memcpy_h2d("src", sent, 0, 0, 1, 1)
    m.launch()
    return m, m.run(), sent


def at(m, sym, x=1):
    """Symbol sym of the PE at (x, 0)."""
    return m.memcpy_d2h(sym, x, 0, 1, 1)[0, 0]


@pytest.mark.parametrize("n", [1, 5, 40])
def test_end_of_stream_runs_the_data_tasks_then_the_control_task(n):
    m, res, sent = _pair(n)
    assert at(m, "count")[0] == n  # every data task ran before the control task
    assert at(m, "sum")[0] == sent.sum()
    assert at(m, "fin")[0] == 5  # r0 = the control task ID
    assert res.stats.wavelets_sent[0, 0] == n + 1  # the control wavelet is one wavelet
    assert res.stats.wavelets_received[0, 1] == n + 1


def test_control_task_starts_when_its_wavelet_lands_by_the_cost_table():
    """One data wavelet, then the control wavelet one send later: the data task (task
    switch, two adds, ret) ends before the control wavelet lands, so the control task
    starts at its landing plus one task switch."""
    src = """
.program sender
main:
    send 0, 9
    sendctl 0, keep, 5
    halt
""" + PAIR.split(".program sink")[1].join([".program sink", ""])
    src = src.replace("{n}", "1").replace("{x}", "1")
    m, _ = run_program(src, mesh=(2, 1))
    w, switch = cost("send"), ARCH["task_switch"]
    data_end = max(cost("ret"), land(0, 1)) + switch + 2 * cost("add") + cost("ret")
    start = max(data_end, land(w, 1)) + switch
    fin = at(m, "fin")
    assert at(m, "sum")[0] == 9
    assert fin[1] == start


def test_end_of_stream_cycles_and_bits_do_not_depend_on_the_lag_window():
    runs = [_pair(24, x=3, lag=lag) for lag in (1, 3, 256)]
    for m, res, _ in runs[1:]:
        assert res.cycles == runs[0][1].cycles
        for sym in ("sum", "count", "fin"):
            assert np.array_equal(at(m, sym, 3), at(runs[0][0], sym, 3))


def test_a_blocked_control_task_waits_until_unblocked():
    src = """
.program sender
main:
    sendctl 0, keep, 1
    halt
.program sink
.data fin i32[2]
main:
    block late
    mov r1, 0
spin:
    add r1, r1, 1
    blt r1, 50, spin
    st.i32 [fin], r1
    unblock late
    ret
.task late control 1
    mov r2, %cycle
    st.i32 [fin + 4], r2
    halt
""" + PAIR.split(".layout")[1].join([".layout", ""]).replace("{x}", "1")
    m, _ = run_program(src, mesh=(2, 1))
    fin = at(m, "fin")
    assert fin[0] == 50 and fin[1] > land(0, 1) + ARCH["task_switch"]


# ---------------------------------------------------------------- errors


def _asm_error(src, mesh=(2, 1)):
    with pytest.raises(AsmError) as e:
        assemble(src, *mesh, "wse3")
    return str(e.value)


TASKS = """main:
    ret
.task a control 3
    halt
.task b control {id}
    halt
"""


def test_two_tasks_on_one_control_id_is_an_error_at_the_id():
    text = _asm_error(TASKS.replace("{id}", "1 + 2"), mesh=(1, 1))
    assert "<input>:5:17: error: control task ID 3 already bound to task 'a'" in text
    assert ".task b control 1 + 2\n" in text and "\n                    ^" in text


@pytest.mark.parametrize("bad", ["32", "-1"])
def test_control_id_out_of_range_is_an_error(bad):
    text = _asm_error(TASKS.replace("{id}", bad), mesh=(1, 1))
    assert ":5:17: error: control task ID" in text and "0-31" in text


@pytest.mark.parametrize(
    "line, message",
    [
        ("sendctl 0, jump", "unknown control action 'jump'"),
        ("sendctl 0, 1", "unknown control action '(expression)'"),
        ("sendctl 0, advance, 40", "(a control task ID): immediate 40 is outside 0-31"),
        ("sendctl 0, advance, r1", "register r1 cannot appear in an expression here"),
        ("sendctl 0", "sendctl takes 2 to 3 operands, got 1"),
    ],
)
def test_bad_sendctl_operands_are_located_errors(line, message):
    text = _asm_error(f"main:\n    {line}\n    halt\n", mesh=(1, 1))
    assert text.startswith("<input>:2:") and message in text
    if "jump" in line:
        assert "expected one of keep, advance, reset" in text


def _fault(src, mesh=(2, 1)):
    with pytest.raises(RunError) as e:
        run_program(src, mesh=mesh)
    return str(e.value)


LAYOUT = PAIR.split(".layout")[1].join([".layout", ""]).replace("{x}", "1")


def test_control_wavelet_for_a_task_the_destination_lacks_faults_at_the_sender():
    src = (
        """
.program sender
main:
    sendctl 0, advance, 4
    halt
.program sink
main:
    ret
.task done control 5
    halt
"""
        + LAYOUT
    )
    text = _fault(src)
    assert "PE (0,0) pc 0" in text and "sendctl 0, advance, 4" in text
    assert "control task ID 4, destination PE (1,0)" in text


@pytest.mark.parametrize(
    "receive",
    ["recv r1, 0", "dmem d0, buf, 4\n    dfin d1, 0, 4\n    vmov.i32 d0, d1"],
    ids=["recv", "fabric-input"],
)
def test_control_wavelet_reaching_recv_or_a_fabric_input_faults(receive):
    src = (
        f"""
.program sender
main:
    send 0, 1
    sendctl 0, keep, 0
    halt
.program sink
.data buf i32[4]
main:
    recv r2, 0
    {receive}
    halt
.task done control 0
    halt
"""
        + LAYOUT
    )
    text = _fault(src)
    assert "PE (1,0)" in text and "control wavelet reached recv or a fabric input" in text
    assert "(color 0)" in text and receive.split("\n")[-1].strip() in text


# ---------------------------------------------------------------- syntax


@settings(max_examples=60, deadline=None)
@given(
    action=st.sampled_from(isa.CONTROL_ACTIONS),
    a=st.integers(-40, 40),
    b=st.integers(-3, 3),
    color=st.integers(0, 23),
)
def test_sendctl_control_id_expressions(action, a, b, color):
    """The control ID is any integer expression: in range it assembles to its value and
    disassembles back to the same instruction; out of range it is a located error."""
    value = a + 2 * b
    src = f".const B = {b}\nmain:\n    sendctl {color}, {action}, {a} + 2 * B\n    halt\n"
    if not 0 <= value < isa.CONTROL_IDS:
        with pytest.raises(AsmError, match=r"^<input>:3:\d+: error: .*outside 0-31"):
            assemble(src, 1, 1, "wse3")
        return
    linked = assemble(src, 1, 1, "wse3")
    assert disassemble(linked.code[0]) == f"sendctl {color}, {action}, {value}"
    bare = assemble(f"main:\n    sendctl {color}, {action}\n    halt\n", 1, 1, "wse3")
    assert disassemble(bare.code[0]) == f"sendctl {color}, {action}"


def test_sendctl_is_listed_with_its_operand_kinds():
    row = isa.by_mnemonic()["sendctl"]
    assert row.syntax == "sendctl color, ctl, [ctlid=-1]"
    kinds = isa.operand_kinds()
    assert "advance" in kinds["ctl"] and "control" in kinds["ctlid"]


MERGE = """
.const K = 4
.program sender
.param ID = 1
.param PACE = 1
main:
    mov r1, 0
next:
    add r2, r1, 100 * ID
    send 0, r2               ; data: 100 * ID + i
    mov r3, 0
pace:
    add r3, r3, 1
    blt r3, PACE, pace
    add r1, r1, 1
    blt r1, K, next
    sendctl 0, keep, ID      ; this sender's stream ends
    halt

.program sink
.data got i32[2 * K + 2]
main:
    mov r4, 0                ; byte offset of the next record
    mov r5, 0                ; control tasks run
    ret
.task on_data color 0
    st.i32 [r4 + got], r0
    add r4, r4, 4
    ret
.task end1 control 1
    jmp record
.task end2 control 2
record:
    add r6, r0, 1000
    st.i32 [r4 + got], r6
    add r4, r4, 4
    add r5, r5, 1
    blt r5, 2, wait
    halt
wait:
    ret

.layout
.place sender at 0, 0 size 1, 1 with ID = 1, PACE = 3
.place sink at 1, 0 size 1, 1
.place sender at 2, 0 size 1, 1 with ID = 2, PACE = 2
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 2, 0 size 1, 1 rx ramp tx west
.route 0 at 1, 0 size 1, 1 rx west, east tx ramp
"""


def test_two_streams_merged_each_end_after_its_own_data_for_every_lag_and_batch():
    """Two senders' streams merge into one queue, each ended by its own control wavelet:
    each control task runs after every data wavelet of its sender, and the record and
    cycles are the same for every lag window and batch size (time order)."""
    k = 12
    runs = []
    for lag, batch in ((1, 1), (2, 7), (16, 3), (256, 100_000)):
        m = Mesh(3, 1, overrides={"lag_window": lag})
        m.load(assemble(MERGE, 3, 1, m.arch, consts={"K": k}))
        m.launch()
        res = m.run(batch=batch)
        runs.append((res.cycles, at(m, "got").tolist()))
    assert all(r == runs[0] for r in runs[1:])
    got = runs[0][1]
    for sender in (1, 2):
        end = got.index(1000 + sender)
        data = [v for v in got[:end] if v // 100 == sender]
        assert data == [100 * sender + i for i in range(k)]
    assert sorted(got) == sorted([100 * s + i for s in (1, 2) for i in range(k)] + [1001, 1002])


def test_the_debugger_lists_control_tasks_with_their_id():
    from wse_emu.debug import Session

    m = Mesh(3, 1)
    m.load(assemble(MERGE, 3, 1, m.arch))
    m.launch()
    s = Session(m)
    s.set_focus(1, 0)
    rows = [" ".join(r.split()) for r in s.tasks()[1:]]
    assert [r.split()[1:2] + r.split()[3:5] for r in rows] == [
        ["on_data", "color", "0"],
        ["end1", "control", "1"],
        ["end2", "control", "2"],
    ]


CHOICE = """
.const K = 6
.const WORK = 1
.program sender
.param PAD = 1
.param CTL = 0
main:
    mov r1, 0
    mov r7, CTL
next:
    mov r3, 0
pace:
    add r3, r3, 1
    blt r3, PAD, pace
    beq r7, 1, control
    mov r2, %cycle
    send 0, r2               ; data: its send cycle
    jmp sent
control:
    sendctl 1, keep, 3       ; a control task per wavelet, on another color
sent:
    add r1, r1, 1
    blt r1, K, next
    halt

.program sink
.data got i32[2 * K]
main:
    mov r4, 0
    ret
.task on_ctl control 3       ; the lower task id: it wins a tie
    mov r5, -1
    jmp log
.task on_data color 0
    mov r5, r0
log:
    st.i32 [r4 + got], r5
    mov r6, 0
work:                        ; keep the sink busy, so it picks its next task at once
    add r6, r6, 1
    blt r6, WORK, work
    add r4, r4, 4
    blt r4, 8 * K, more
    halt
more:
    ret

.layout
.place sender at 0, 0 size 1, 1 with PAD = {a}
.place sink at 1, 0 size 1, 1
.place sender at 2, 0 size 1, 1 with PAD = {b}, CTL = 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 1, 0 size 1, 1 rx west tx ramp
.route 1 at 2, 0 size 1, 1 rx ramp tx west
.route 1 at 1, 0 size 1, 1 rx east tx ramp
"""


@pytest.mark.parametrize(
    "pads, work", [((12, 17), 1), ((5, 5), 5), ((2, 3), 1), ((1, 1), 20), ((8, 3), 20)]
)
def test_the_choice_between_a_data_task_and_a_control_task_is_the_same_for_every_lag(pads, work):
    """A data stream and a stream of control wavelets on another color reach one sink; the
    task picker's choice between them (which control wavelets sent later could change)
    is made in time order, so the log and cycles are the same for every lag window."""
    src = CHOICE.replace("{a}", str(pads[0])).replace("{b}", str(pads[1]))
    outcomes = set()
    for lag in (1, 2, 5, 64, 256):
        m = Mesh(3, 1, overrides={"lag_window": lag})
        m.load(assemble(src, 3, 1, m.arch, consts={"WORK": work}))
        m.launch()
        res = m.run()
        log = at(m, "got")
        assert sorted(log.tolist()).count(-1) == 6  # every control task ran
        outcomes.add((res.cycles, log.tobytes()))
    assert len(outcomes) == 1
