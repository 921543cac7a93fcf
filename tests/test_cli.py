"""The command line as a whole: help text reaches the user as written."""

from typer.testing import CliRunner

from azc.cli import app


def test_help_keeps_square_brackets():
    # rich markup used to eat "[default: ...]" and the "[ray]" of `pip install "azc[ray]"`
    result = CliRunner().invoke(app, ["evolve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "[default: drawn, and recorded]" in result.output
    assert 'azc[ray]' in result.output


def test_ops_lists_every_op_by_the_name_experiment_files_use():
    import json

    from azc.experiment import Component
    from azc.ops import OPS

    result = CliRunner().invoke(app, ["ops", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["ops"]
    assert [(row["id"], row["name"]) for row in rows] == [(op.id, op.name) for op in OPS]
    assert {"id": 1, "name": "SCALAR_SUM", "form": "s = s + s", "data": ""} in rows
    Component(ops=[row["name"] for row in rows])  # every listed name is a valid op name
    table = CliRunner().invoke(app, ["ops"]).output
    assert "VECTOR_INNER_PRODUCT" in table and "s = dot(v, v)" in table


def test_counts_take_the_right_plural(tmp_path):
    program = tmp_path / "p.az"
    program.write_text("def setup():\n    s2 = 0.5\n\ndef predict():\n"
                       "    s1 = dot(v1, v0)\n\ndef learn():\n    v1 = v1 + v0\n")
    result = CliRunner().invoke(app, ["run", str(program), "--tasks", "1", "--engine",
                                      "reference"])
    assert "p.az on 1 task\n" in result.output
    result = CliRunner().invoke(app, ["export", str(program), "-o", str(tmp_path / "p.py")])
    assert result.exit_code == 0, result.output
    assert ", 1 dead instruction left out" in result.output, result.output


def test_a_full_disk_mid_run_is_a_message_and_the_last_checkpoint_stays(tmp_path, monkeypatch):
    import errno

    from azc.rundir import RunDir
    from tests.test_experiment import TINY

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    saved = RunDir.checkpoint
    calls = []

    def checkpoint_then_fill(self, state):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device",
                          str(self.path / "checkpoint.json"))
        saved(self, state)

    monkeypatch.setattr(RunDir, "checkpoint", checkpoint_then_fill)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["evolve", str(experiment), "--out", str(out), "--seed", "1",
                                      "--engine", "reference", "--workers", "1"])
    assert result.exit_code == 1
    assert "checkpoint.json: No space left on device" in result.output
    assert "Traceback" not in result.output
    assert len(calls) > 1 and (out / "checkpoint.json").exists()


def test_run_and_evolve_take_the_same_seeds():
    # `azc run --seed -1` used to run, where `azc evolve --seed -1` was refused
    for command in (["run", "examples/linear_regression.az"], ["evolve", "--no-save"]):
        result = CliRunner().invoke(app, [*command, "--seed", "-1"])
        assert result.exit_code == 2, result.output
        assert "--seed" in result.output
