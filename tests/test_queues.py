"""WSE-3 queue binding (.queue, and automatic binding at link time): each queue carries one
color; more colors than queues, or two colors on one queue, are located errors; wse2 keeps
one queue per color."""

import pytest

from wse_emu import AsmError, assemble
from wse_emu.arch import ArchProfile


def recv_program(n_colors, extra=""):
    lines = [f"    recv r1, {c}" for c in range(n_colors)]
    return extra + "main:\n" + "\n".join(lines) + "\n    halt\n"


def test_more_receive_colors_than_input_queues_is_an_error_at_the_first_without_one():
    n = ArchProfile("wse3")["input_queues"]
    assemble(recv_program(n), arch="wse3")  # exactly enough
    with pytest.raises(AsmError, match=f"no free input queue for color {n}: wse3 has {n}") as e:
        assemble(recv_program(n + 1), arch="wse3")
    assert e.value.line == n + 2  # "main:" is line 1, recv of color c on line c + 2
    assemble(recv_program(n + 1), arch="wse2")  # one queue per color


def test_a_data_task_takes_an_input_queue():
    n = ArchProfile("wse3")["input_queues"]
    src = recv_program(n) + ".task t color 20\n    ret\n"
    with pytest.raises(AsmError, match="no free input queue for color 20") as e:
        assemble(src, arch="wse3")
    assert e.value.line == n + 4  # the task's first instruction


def test_two_colors_on_one_output_queue_is_a_located_error():
    src = """.queue out 2 color 5
.queue out 2 color 6
main:
    halt
"""
    with pytest.raises(
        AsmError, match=r"output queue 2 is already bound to color 5 \(line 1\)"
    ) as e:
        assemble(src, arch="wse3")
    assert e.value.line == 2


def test_explicit_bindings_are_kept_and_the_rest_take_the_lowest_free_queue():
    src = """.queue out 0 color 7
.queue in 1 color 3
main:
    send 7, 1
    send 9, 2
    recv r1, 4
    recv r2, 3
    halt
"""
    image = assemble(src, arch="wse3").images[0]
    assert image.queues == {("out", 7): 0, ("in", 3): 1, ("out", 9): 1, ("in", 4): 0}


@pytest.mark.parametrize(
    "src,msg",
    [
        (".queue out 1 color 2\nmain:\n    halt\n", "needs an arch with queues"),
    ],
)
def test_queue_directives_are_refused_on_wse2(src, msg):
    with pytest.raises(AsmError, match=msg):
        assemble(src, arch="wse2")


@pytest.mark.parametrize(
    "src,msg,line",
    [
        (".queue sideways 1 color 2\nmain:\n    halt\n", "direction must be 'in' or 'out'", 1),
        (".queue out 6 color 2\nmain:\n    halt\n", "output queue 6 does not exist: wse3 has 6", 1),
        (
            ".queue in 0 color 2\n.queue in 1 color 2\nmain:\n    halt\n",
            "already bound to input queue 0",
            2,
        ),
        (".queue in 99 color 2\nmain:\n    halt\n", "queue id", 1),
        (".queue in 0 color 99\nmain:\n    halt\n", "color", 1),
    ],
)
def test_bad_queue_directives(src, msg, line):
    with pytest.raises(AsmError, match=msg) as e:
        assemble(src, arch="wse3")
    assert e.value.line == line
