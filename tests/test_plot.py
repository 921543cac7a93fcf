"""azc plot: a real image from a real run's progress log; damaged logs fail with a message."""

import json
import shutil
import struct
import sys

import pytest
from typer.testing import CliRunner

from azc.cli import app
from azc.experiment import load_experiment
from azc.plot import plot_run, progress_figure
from azc.report import read_progress_log
from azc.rundir import RunDir
from azc.search import Search
from tests.test_experiment import TINY

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(folder, seed: int = 3, **search) -> dict:
    """A tiny two-experiment search recorded in `folder`, reporting after every generation."""
    (folder.parent / "tiny.toml").write_text(TINY)
    experiment = load_experiment(folder.parent / "tiny.toml")
    rundir = RunDir(folder)
    rundir.create(experiment, seed)
    run = Search(experiment, seed, monitors=[rundir], progress_seconds=0.0,
                 engine="reference", **search)
    summary = {"seed": seed, "experiment": experiment.table.name, **run.run().summary()}
    rundir.finish(summary)
    return summary


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot") / "run"
    make_run(folder)
    return folder


@pytest.fixture
def run(finished_run, tmp_path):
    """A private copy of the finished run, free to damage."""
    return shutil.copytree(finished_run, tmp_path / "run")


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def azc(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_the_plot_is_a_png_of_the_runs_log(run, tmp_path):
    image = tmp_path / "progress.png"
    result = azc("plot", run, "-o", image)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "2 finished experiment" in result.output
    assert png_size(image) == (1100, 420)
    assert image.stat().st_size > 20_000

    # It opens, and is a drawing rather than a blank canvas.
    import matplotlib.image

    pixels = matplotlib.image.imread(image)
    assert pixels.shape[:2] == (420, 1100)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 20


def test_the_default_image_goes_into_the_run_directory(run):
    result = azc("plot", run)
    assert result.exit_code == 0, result.output
    png_size(run / "progress.png")


def test_lines_follow_the_log_one_pair_per_experiment(finished_run):
    progress = read_progress_log(finished_run)
    experiments = {record["experiment"] for record in progress.reports}
    assert len(progress.reports) > 10 and experiments == {0, 1}
    figure = progress_figure(progress, "t")
    by_individuals, by_time = figure.axes[:2]
    lines = by_individuals.get_lines()
    best = [line for line in lines if line.get_linestyle() == "-"]
    assert len(best) == 2  # one per experiment; the two mean lines are dashed
    drawn = [y for line in best for y in line.get_ydata()]
    assert drawn == [record["best"] for record in progress.reports]
    seconds = [x for line in by_time.get_lines() if line.get_linestyle() == "-"
               for x in line.get_xdata()]
    assert seconds == [record["seconds"] for record in progress.reports]


def test_one_colour_per_island(finished_run):
    progress = read_progress_log(finished_run)
    reports = progress.reports
    progress.reports = ([{**r, "island": 0} for r in reports]
                        + [{**r, "island": 1, "best": r["best"] / 2} for r in reports])
    assert progress.islands() == [0, 1]
    panel = progress_figure(progress, "islands").axes[0]
    colours = {line.get_color() for line in panel.get_lines() if line.get_linestyle() == "-"}
    assert len(colours) == 2
    labels = [text.get_text() for text in panel.get_legend().get_texts()]
    assert labels == ["island 0 best", "island 0 mean", "island 1 best", "island 1 mean"]


def test_island_records_are_read_from_the_log(run):
    log = run / "progress.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({**r, "island": i % 3}) + "\n"
                           for i, r in enumerate(records)))
    info = plot_run(run, run / "islands.png")
    assert info.islands == 3
    png_size(run / "islands.png")


def test_a_partial_last_line_is_skipped_silently(run):
    whole = len(read_progress_log(run).reports)
    with open(run / "progress.jsonl", "a") as log:
        log.write('{"experiment": 1, "individuals": 25')
    result = azc("plot", run)
    assert result.exit_code == 0, result.output
    assert f"{whole} progress reports" in result.output
    assert read_progress_log(run).partial_last_line


@pytest.mark.parametrize("damage, message", [
    ("garbage\n", ":3: damaged progress log: not a JSON record: 'garbage'"),
    ('{"experiment": 0, "individuals": 5}\n', ":3: damaged progress log: the record has no "
                                              "'seconds'"),
    ("[1, 2]\n", ":3: damaged progress log: a record must be a JSON object"),
    ("null\n", ":3: damaged progress log: a record must be a JSON object"),
])
def test_a_damaged_line_is_named_with_exit_status_2(run, damage, message):
    log = run / "progress.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2]) + damage + "".join(lines[2:]))
    result = azc("plot", run)
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("field, value, wanted", [
    ("best", "high", "a number"), ("individuals", 2.5, "a whole number"),
    ("seconds", None, "a number"), ("experiment", True, "a whole number"),
    ("cache_hit_rate", "80%", "a number"), ("island", [0], "a number or a name"),
])
def test_wrong_types_are_damage(run, field, value, wanted):
    log = run / "progress.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    records[0][field] = value
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = azc("plot", run)
    assert result.exit_code == 2
    assert f":1: damaged progress log: '{field}' must be {wanted}" in result.output


def test_missing_or_empty_log_and_not_a_run(run, tmp_path):
    (run / "progress.jsonl").write_text("")
    result = azc("plot", run)
    assert result.exit_code == 2 and "no progress reports yet" in result.output

    (run / "progress.jsonl").unlink()
    result = azc("plot", run)
    assert result.exit_code == 2 and "no progress log" in result.output

    result = azc("plot", tmp_path)
    assert result.exit_code == 2 and "not a run directory (no run.json" in result.output
    result = azc("plot", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such directory" in result.output
    result = azc("plot", run / "run.json")
    assert result.exit_code == 2 and "not a run directory (a file" in result.output


def test_output_paths_that_cannot_be_written(run, tmp_path):
    result = azc("plot", run, "-o", tmp_path / "plot.jpeg")
    assert result.exit_code == 2 and "name it .png, .svg or .pdf" in result.output
    result = azc("plot", run, "-o", tmp_path / "no" / "such" / "plot.png")
    assert result.exit_code == 2 and "no such directory to write the plot into" in result.output


def test_svg_too(run, tmp_path):
    assert azc("plot", run, "-o", tmp_path / "p.svg").exit_code == 0
    assert "<svg" in (tmp_path / "p.svg").read_text()[:500]


def test_without_matplotlib_the_message_says_how_to_install(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = azc("plot", run)
    assert result.exit_code == 2 and "pip install matplotlib" in result.output
