"""Plots of a run: best and mean fitness against individuals and against time.

    log = read_progress_log(run)                 # checked; the partial last line is skipped
    left panel:  best (solid) and mean (dashed) search fitness against individuals
    right panel: the same against seconds
    one colour per island; lines break where an experiment ends (dotted verticals)

Only the progress log is read, so a run can be plotted while it runs. matplotlib is imported
when a plot is drawn, never at `import azc`, and draws with its Agg canvas: no display needed.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from azc.errors import AzcError
from azc.report import ProgressLog, read_progress_log

log = logging.getLogger("azc")

FORMATS = ("png", "svg", "pdf")
AXES = (("individuals", "individuals"), ("seconds", "time (s)"))


@dataclass(frozen=True)
class PlotInfo:
    """What was drawn: for the command's one-line report."""

    path: Path
    reports: int
    experiments: int
    islands: int


def _matplotlib():
    """The Figure class and the Agg canvas, or an AzcError that says how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise AzcError("azc plot needs matplotlib, a dependency of azc that is missing here: "
                       "pip install matplotlib") from None
    return Figure, FigureCanvasAgg


def plot_run(run: str | Path, output: str | Path | None = None) -> PlotInfo:
    """Draw the run's progress into `output` (default RUN/progress.png): PNG, SVG or PDF."""
    progress = read_progress_log(run)
    if not progress.reports:
        raise AzcError(f"{Path(run) / 'progress.jsonl'}: no progress reports yet, nothing to "
                       "plot")
    output = Path(run) / "progress.png" if output is None else Path(output)
    kind = output.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise AzcError(f"{output}: cannot tell the image format; name it .png, .svg or .pdf")
    if not output.parent.is_dir():
        raise AzcError(f"{output.parent}: no such directory to write the plot into")

    figure = progress_figure(progress, f"{Path(run).resolve().name}: best and mean fitness "
                                       "of the population")
    try:
        figure.savefig(output, format=kind, dpi=100)
    except OSError as problem:
        raise AzcError(f"{output}: cannot write the plot: {problem}") from None
    log.info("plotted %d reports into %s", len(progress.reports), output)
    return PlotInfo(output, len(progress.reports), len(progress.experiments_done),
                    len(progress.islands()))


def progress_figure(progress: ProgressLog, title: str):
    """A matplotlib Figure (on an Agg canvas) with the two panels of the module docstring."""
    Figure, Canvas = _matplotlib()
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    Canvas(figure)
    panels = figure.subplots(1, 2, sharey=True)
    islands = progress.islands()
    for panel, (key, label) in zip(panels, AXES, strict=True):
        _draw(panel, progress, islands, key)
        panel.set_xlabel(label)
        panel.grid(True, alpha=0.3)
    panels[0].set_ylabel("search fitness")
    panels[0].legend(loc="lower right", fontsize="small", ncols=1 + len(islands) // 8)
    figure.suptitle(title)
    return figure


def _draw(panel, progress: ProgressLog, islands: list, key: str):
    """One best and one mean line per island, broken between experiments."""
    for index, island in enumerate(islands):
        color = f"C{index % 10}"
        name = "" if island is None else f"island {island} "
        records = [r for r in progress.reports if r.get("island") == island]
        experiments = dict.fromkeys(r["experiment"] for r in records)
        for number, experiment in enumerate(experiments):
            segment = [r for r in records if r["experiment"] == experiment]
            x = [r[key] for r in segment]
            labels = (f"{name}best", f"{name}mean") if number == 0 else ("_", "_")
            panel.plot(x, [r["best"] for r in segment], color=color, linewidth=1.6,
                       label=labels[0], marker="." if len(segment) == 1 else None)
            panel.plot(x, [r["mean"] for r in segment], color=color, linewidth=1.0,
                       linestyle="--", alpha=0.8, label=labels[1],
                       marker="." if len(segment) == 1 else None)
    for done in progress.experiments_done:
        panel.axvline(done[key], color="grey", linestyle=":", linewidth=0.8)
