"""Everyday conveniences: --const on the command line, times in readable units, notebook
(HTML) views of results, the heatmap as a figure."""

import json

import pytest
from click.testing import CliRunner
from conftest import vector_add_cycles
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import Mesh, programs
from wse_emu.cli import main
from wse_emu.stats import duration

ROW = str(programs.path("row_broadcast"))


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def test_const_changes_the_program(tmp_path):
    """--const N=8 makes the row broadcast send 8 values a row instead of 32."""
    out = tmp_path / "s.json"
    for n in (8, 32):
        r = cli("run", ROW, "--const", f"N={n}", "--json", out, "-q")
        assert r.exit_code == 0, r.output
        stats = json.loads(out.read_text())
        assert stats["wavelets_sent"] == n * 4  # one root a row, 4 rows


@pytest.mark.parametrize(
    "arg, message",
    [
        ("Q=8", "cannot set Q: not a .const of this file (consts: ROW, N)"),
        ("N=x", "--const N: value must be a number"),
        ("N", "--const wants NAME=VALUE"),
        ("N=0", "dimension 1 of 'src' 0 out of range"),
    ],
)
def test_bad_const_is_a_clear_error(arg, message):
    r = cli("run", ROW, "--const", arg)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


@given(st.text(max_size=12))
def test_any_const_text_runs_or_is_refused_cleanly(text):
    r = cli("asm", ROW, "--const", text)
    assert r.exit_code in (0, 1, 2)
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    "seconds, text",
    [(3.2e-8, "32 ns"), (2.1e-4, "210 us"), (0.5, "500 ms"), (12.0, "12 s"), (9.9996e-7, "1 us")],
)
def test_duration_picks_a_readable_unit(seconds, text):
    assert duration(seconds) == text


def test_results_render_as_html_tables():
    m = Mesh(1, 1)
    m.load(programs.path("vector_add"))
    m.launch()
    res = m.run()
    html = res._repr_html_()
    assert html.startswith("<p><b>done</b></p><table>")
    assert (
        f"<th style='text-align:left'>cycles</th><td style='text-align:left'>{vector_add_cycles()}"
        in html
    )
    assert "<th style='text-align:left'>PE cycles</th>" in html


def test_heatmap_without_a_path_is_a_figure():
    m = Mesh(1, 1)
    m.load(programs.path("vector_add"))
    m.launch()
    fig = m.run().stats.heatmap()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [
        "busy fraction",
        "stalled fraction",
        "idle fraction",
        "wavelets per link (0 link crossings)",
    ]


def test_shell_completion_as_the_readme_says():
    """The README's completion line works: click's completion script, and completions."""
    from click.testing import CliRunner

    from wse_emu.cli import main

    env = {"_WSE_EMU_COMPLETE": "bash_source"}
    script = CliRunner().invoke(main, [], prog_name="wse-emu", env=env).output
    assert "_wse_emu_completion" in script and "complete " in script
    env = {"_WSE_EMU_COMPLETE": "bash_complete", "COMP_WORDS": "wse-emu ru", "COMP_CWORD": "1"}
    assert CliRunner().invoke(main, [], prog_name="wse-emu", env=env).output == "plain,run\n"
