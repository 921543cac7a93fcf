"""`azc simplify` and the tracing behind it, through typer's runner."""

from pathlib import Path

from typer.testing import CliRunner

from azc.cli import app
from azc.parse import parse, parse_file
from azc.passes import optimize
from azc.printer import format_program
from azc.simplify import FOLDED, KEPT, REMOVED, simplify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def test_simplify_prints_the_linear_regressor_from_the_padded_example():
    result = runner.invoke(app, ["simplify", str(EXAMPLES / "linear_regression_padded.az")])
    assert result.exit_code == 0, result.output
    program = parse(result.output)
    assert format_program(program) == result.output
    assert [len(c) for c in program.components()] == [1, 1, 4]
    assert program == optimize(parse_file(EXAMPLES / "linear_regression.az"))


def test_simplify_diff_marks_removed_lines_and_counts_them():
    result = runner.invoke(app, ["simplify", "--diff",
                                 str(EXAMPLES / "linear_regression_padded.az")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "    - noop()" in lines
    assert "      s1 = dot(v1, v0)" in lines
    assert "\x1b[" not in result.output  # plain when not a terminal
    assert "12 of 18 instructions removed" in result.output


def test_simplify_reports_a_bad_file_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.az"
    bad.write_text("def setup():\n    s1 = frobnicate(s2)\n")
    result = runner.invoke(app, ["simplify", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_tracing_marks_folds_and_the_dead_code_they_leave():
    program = parse("def setup():\n    s2 = 0.5\n    s3 = s2 * s2\n    noop()\n"
                    "def predict():\n    s2 = s0 * s3\n    s1 = dot(v0, v1)\n    s1 = s1 * s3\n"
                    "def learn():\n    v1 = s0 * v0\n")
    traced = simplify(program)
    assert traced.fates[0] == ((REMOVED, None), (FOLDED, "s3 = 0.25"), (REMOVED, None))
    assert traced.fates[1] == ((REMOVED, None), (KEPT, None), (KEPT, None))
    assert traced.simplified == optimize(program)
    assert format_program(traced.simplified).splitlines()[1] == "    s2 = 0.25"


def test_simplify_reports_passes_and_dumps_after_a_named_one():
    path = str(EXAMPLES / "linear_regression_padded.az")
    result = runner.invoke(app, ["simplify", "--passes", "--dump-after", "eliminate_dead_code",
                                 path])
    assert result.exit_code == 0, result.output
    assert "eliminate_dead_code    changed" in result.output
    assert "program after eliminate_dead_code:" in result.output
    bad = runner.invoke(app, ["simplify", "--dump-after", "nonsense", path])
    assert bad.exit_code == 2 and "no pass named nonsense" in bad.output
