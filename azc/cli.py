"""The `azc` command line: thin typer commands over the library.

Each command's work lives in the library; this module parses arguments, turns AzcError into a
message and exit status 2, and decides what the user sees.
"""

import contextlib
import functools
import json
import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from azc.errors import AzcError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Evolve machine-learning algorithms from scratch (AutoML-Zero).")
err = Console(stderr=True)
out = Console()


@app.callback()
def azc():
    """Evolve machine-learning algorithms from scratch (AutoML-Zero)."""
    # NOTE: a callback keeps typer in multi-command mode while only one command exists.
    for console in (out, err):
        _unwrapped_when_piped(console)


def _unwrapped_when_piped(console: Console):
    """Into a pipe or file, lines stay whole: no hard wrap at rich's default 80 columns."""
    piped = not console.is_terminal and "COLUMNS" not in os.environ
    console.soft_wrap = piped
    console.width = PIPED_WIDTH if piped else None


PIPED_WIDTH = 10_000  # tables take only the width they need


def user_errors(command):
    """Report AzcError (and missing files) as a one-line message with exit status 2, and a
    failure of the system (a full disk, a file it may not write) as one with status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AzcError as error:
            # soft_wrap: paths and file:line prefixes stay whole, to copy and click.
            err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:  # what was written before stays, as for OSError
            err.print("[bold red]error:[/] out of memory: fewer or smaller tasks, or a smaller "
                      "population, may fit", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OSError as error:  # what was written before stays: files are replaced atomically
            where = f"{error.filename}: " if error.filename else ""
            err.print(f"[bold red]error:[/] {escape(where + (error.strerror or str(error)))}",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.command()
@user_errors
def run(
    programs: list[Path] = typer.Argument(..., help="The algorithm(s), .az files: several are "
                                                    "compared side by side."),
    kind: str = typer.Option(None, help="Task kind: linear, nn, digits, csv, npz, cifar10, ..."),
    features: int = typer.Option(None, help="Feature size F (default 4; 16 for images)."),
    train: float = typer.Option(None, help="Examples per epoch (default 1000, or a fraction)."),
    valid: float = typer.Option(None, help="Validation examples (default 100, or a fraction)."),
    epochs: int = typer.Option(None, help="Training epochs (default 1)."),
    tasks: int = typer.Option(None, help="How many tasks (default 10)."),
    param_seed: list[int] = typer.Option(None, help="Param seed of the first task(s)."),
    data_seed: list[int] = typer.Option(None, help="Data seed of the first task(s)."),
    data: Path = typer.Option(None, help="Data file (csv, npz) or folder (cifar10, mnist)."),
    classes: str = typer.Option(None, help='Class pair of projected tasks, e.g. "0,1".'),
    label_column: str = typer.Option(None, help="CSV/NPZ label column: name or index."),
    eval_type: str = typer.Option(None, "--eval", help="rms or accuracy."),
    tasks_file: Path = typer.Option(None, help="Task collection from a TOML file instead."),
    experiment: Path = typer.Option(None, help="An experiment file's final tasks and memory "
                                               "instead."),
    seed: int = typer.Option(0, min=0, help="Seed of the programs' random ops, 0 or more."),
    max_abs_error: float = typer.Option(None, help="Error that stops training early "
                                                   "(default 100)."),
    memory: str = typer.Option(None, help="Memory as scalars/vectors/matrices, e.g. 4/3/1."),
    engine: str = typer.Option("auto", help="auto, interp, jit or reference."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Evaluate algorithms on a task collection and report their fitness."""
    from azc import runner

    flags = {"kind": kind, "features": features, "train": _count(train), "valid": _count(valid),
             "epochs": epochs, "num_tasks": tasks, "param_seeds": param_seed or None,
             "data_seeds": data_seed or None, "path": None if data is None else str(data),
             "classes": runner.parse_classes(classes), "eval": eval_type,
             "label_column": runner.parse_column(label_column)}
    shape = runner.parse_memory(memory) if memory else None
    if experiment is not None:
        specs, own_shape, own_error = runner.experiment_tasks(experiment, tasks_file, flags)
        shape = shape or own_shape
        max_abs_error = own_error if max_abs_error is None else max_abs_error
    else:
        specs = runner.task_specs(tasks_file, flags)
    results = runner.run_many(programs, specs, memory=shape, seed=seed,
                              max_abs_error=100.0 if max_abs_error is None else max_abs_error,
                              engine=engine)
    if as_json and len(results) == 1:
        typer.echo(json.dumps(results[0].to_json()))
    elif as_json:
        typer.echo(json.dumps({"programs": [{"program": str(path), **result.to_json()}
                                            for path, result in zip(programs, results,
                                                                    strict=True)]}))
    elif len(results) == 1:
        _print_run(programs[0], results[0])
    else:
        _print_runs(programs, results)


def _count(value: float | None):
    """Counts stay integers; only fractions below 1 remain floats."""
    return int(value) if value is not None and value >= 1 and value == int(value) else value


def _print_run(program: Path, result):
    table = Table(title=f"{program.name} on {_plural(len(result.tasks), 'task')}",
                  title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("task")
    table.add_column("eval")
    table.add_column("fitness", justify="right")
    for index, (task, fitness) in enumerate(zip(result.tasks, result.evaluation.task_fitness,
                                                strict=True)):
        table.add_row(str(index), escape(task.name), task.eval_type, f"{fitness:.6f}")
    out.print(table)
    out.print(f"fitness [bold]{result.evaluation.fitness:.6f}[/] (mean over tasks)",
              highlight=False)
    out.print(f"memory {result.memory}, engine {result.engine}, {result.seconds:.3f} s "
              f"(+ {result.task_seconds:.3f} s making tasks)", highlight=False)


def _print_runs(programs: list[Path], results: list):
    """Several programs on one collection: a fitness column per program, a row per task."""
    tasks = results[0].tasks
    table = Table(title=f"{len(programs)} programs on {_plural(len(tasks), 'task')}",
                  title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("task")
    for label in _labels(programs):
        table.add_column(escape(label), justify="right")
    columns = [result.evaluation.task_fitness for result in results]
    for index, task in enumerate(tasks):
        table.add_row(str(index), escape(task.name),
                      *(f"{column[index]:.6f}" for column in columns))
    table.add_section()
    table.add_row("", "[bold]mean[/]",
                  *(f"[bold]{result.evaluation.fitness:.6f}[/]" for result in results))
    out.print(table)
    memories = sorted({str(result.memory) for result in results})
    engines = sorted({result.engine for result in results})
    out.print(f"memory {', '.join(memories)}, engine {', '.join(engines)}, "
              f"{sum(r.seconds for r in results):.3f} s (+ {results[0].task_seconds:.3f} s "
              "making tasks)", highlight=False)


def _plural(count: int, noun: str) -> str:
    """'1 task', '2 tasks', '0 tasks'."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _labels(paths: list[Path]) -> list[str]:
    """Column headers: file names, with as many parent folders as it takes to tell them apart."""
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        labels = [str(Path(*p.parts[-depth:])) for p in paths]
        if len(set(labels)) == len(set(map(str, paths))):
            return labels
    return [str(p) for p in paths]


DEMO = Path(__file__).resolve().parent.parent / "examples" / "experiments" / "demo.toml"


@app.command()
@user_errors
def evolve(
    experiment: Path = typer.Argument(None, help="Experiment file (TOML) [default: the demo]."),
    seed: int = typer.Option(None, min=0, help="Random seed, 0 or more [default: drawn, and "
                                               "recorded]."),
    out_dir: Path = typer.Option(None, "--out",
                                 help="Run directory [default: runs/<name>-<seed>-<time>]."),
    no_save: bool = typer.Option(False, "--no-save", help="Write no run directory."),
    max_time: float = typer.Option(None, help="Stop after this many seconds (checkpointed). "
                                              "With --resume they count the whole run's time, "
                                              "earlier sessions included."),
    resume: Path = typer.Option(None, help="Continue the run recorded in this directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
    checkpoint_every: float = typer.Option(30.0, help="Seconds between checkpoints (0: after "
                                                      "every generation)."),
    engine: str = typer.Option("auto", help="auto, interp, jit or reference."),
    workers: int = typer.Option(None, min=1, help="Islands, each in its own process "
                                                  "[default: this machine's cores]; 1: one "
                                                  "population in this process."),
    ray: str = typer.Option(None, help='Islands as Ray actors on the cluster at ADDRESS, or '
                                       '"auto" (this machine\'s; needs pip install "azc[ray]").'),
):
    """Evolve an algorithm with regularized evolution (default: rediscover linear regression).

    Every run is recorded in a run directory (runs/<name>-<seed>-<time> unless --out), to
    resume, show and plot; --no-save writes none.
    """
    from azc import live, rundir
    from azc.experiment import load_experiment
    from azc.islands import default_workers

    _check_evolve_options(experiment, seed, out_dir, no_save, max_time, resume,
                          checkpoint_every, engine)
    cores = default_workers()
    if workers is not None and workers > cores:
        err.print(f"warning: --workers {workers} is more than this machine's "
                  f"{_plural(cores, 'core')}; the islands will share them", highlight=False)
    path = experiment or DEMO
    if resume is None:
        load_experiment(path)  # its problems before any worker starts
    if not as_json and not ray and resume is None and (workers or cores) > 1:
        err.print(f"starting {workers or cores} island workers...", highlight=False)
    view = None
    if not as_json:
        if out.is_terminal:
            budget = _budget_of(path, resume)
            view = live.LiveView(out, budget)
        else:
            view = live.PlainView(out)
    monitors = [view] if view is not None else []
    with view if isinstance(view, live.LiveView) else _nothing():
        out_to = None if no_save else (out_dir or "auto")
        summary = rundir.evolve(path, seed=seed, out=out_to, resume=resume,
                                max_seconds=max_time or float("inf"), monitors=monitors,
                                checkpoint_seconds=checkpoint_every, engine=engine,
                                workers=workers or (None if ray else cores),
                                ray=ray)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(summary)
    if summary.get("interrupted") and not summary.get("time_limit"):
        raise typer.Exit(130)


def _check_evolve_options(experiment, seed, out_dir, no_save, max_time, resume,
                          checkpoint_every, engine):
    """Refuse contradictory or impossible options before anything starts."""
    from azc.runner import ENGINES

    if experiment is not None and resume is not None:
        raise AzcError("give an experiment file or --resume, not both")
    if no_save and (out_dir is not None or resume is not None):
        raise AzcError(f"--no-save writes no run directory: drop it, or drop "
                       f"{'--out' if out_dir is not None else '--resume'}")
    if resume is not None and (out_dir is not None or seed is not None):
        raise AzcError("--resume goes on in the run's own directory with its own seed: "
                       "drop --out and --seed")
    if max_time is not None and not max_time > 0:
        raise AzcError(f"--max-time: must be a positive number of seconds, got {max_time}")
    if not checkpoint_every >= 0:
        raise AzcError(f"--checkpoint-every: must be 0 or more seconds, got {checkpoint_every}")
    if engine not in ENGINES:
        raise AzcError(f"--engine: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def _budget_of(path: Path, resume: Path | None) -> int:
    from azc.experiment import load_experiment

    source = resume / "experiment.toml" if resume is not None else path
    return load_experiment(source).table.evolution.max_train_steps


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _print_summary(summary: dict):
    from azc.report import final_label

    state = ("solved" if summary["solved"] else
             "stopped at the time limit" if summary.get("time_limit") else
             "interrupted" if summary["interrupted"] else "done")
    final = summary["final_fitness"]
    out.print(f"{state} after {_plural(summary['experiments'], 'experiment')}, "
              f"{summary['individuals']:,} individuals in {summary['seconds']:.1f} s "
              f"({summary['individuals_per_second']:,.0f}/s), seed {summary['seed']}",
              highlight=False)
    if summary.get("run_directory"):
        out.print(f"run directory {escape(summary['run_directory'])}", highlight=False)
    if summary["best_program"] is None:
        return
    out.print(f"search fitness {summary['search_fitness']:.6f}, select fitness "
              f"{summary['select_fitness']:.6f}, final fitness {final_label(summary)} "
              + ("-" if final is None else f"{final:.6f}"), highlight=False)
    out.print(escape(summary["best_program"].rstrip()), highlight=False)


@app.command()
@user_errors
def diff(
    old: Path = typer.Argument(..., help="The earlier program (.az)."),
    new: Path = typer.Argument(..., help="The later program (.az)."),
    simplify: bool = typer.Option(False, help="Compare the optimized programs."),
):
    """Show how one program differs from another, component by component.

    Exit status, as diff(1): 0 when the programs are the same, 1 when they differ, 2 on trouble.
    """
    from azc.diff import program_diff
    from azc.parse import parse_file

    lines = program_diff(parse_file(old), parse_file(new), simplify=simplify)
    for line in lines:
        style = "green" if line[:1] == "+" else "red" if line[:1] == "-" else "dim"
        out.print(f"[{style}]{escape(line)}[/]", highlight=False)
    if not lines:
        out.print("no differences", style="dim")
    else:
        raise typer.Exit(1)


@app.command()
@user_errors
def simplify(
    program: Path = typer.Argument(..., help="The algorithm, an .az file."),
    show_diff: bool = typer.Option(False, "--diff", help="Mark what was removed or folded."),
    passes: bool = typer.Option(False, "--passes", help="Report each pass on stderr."),
    dump_after: list[str] = typer.Option(None, help="Print the program after this pass."),
):
    """Print the smallest equivalent program, in canonical form."""
    from azc.parse import parse_file
    from azc.printer import format_program
    from azc.simplify import FOLDED, REMOVED, pass_names
    from azc.simplify import simplify as simplify_program

    unknown = set(dump_after or ()) - set(pass_names())
    if unknown:
        raise AzcError(f"no pass named {', '.join(sorted(unknown))}; "
                       f"the passes are {', '.join(pass_names())}")
    records = []
    with _debug_log(bool(dump_after)):
        result = simplify_program(parse_file(program), records, frozenset(dump_after or ()))
    if passes:
        for record in records:
            state = "changed" if record.changed else "unchanged"
            err.print(f"{record.name:22s} {state:9s} {record.seconds * 1e6:8.1f} us",
                      highlight=False)
    if not show_diff:
        typer.echo(format_program(result.simplified), nl=False)
        return
    marks = {REMOVED: ("- ", "red"), FOLDED: ("~ ", "yellow")}
    for number, (fate, text) in enumerate(result.lines()):
        if fate is None:
            out.print(("\n" if number else "") + escape(text), style="bold", highlight=False)
            continue
        mark, style = marks.get(fate, ("  ", None))
        out.print(f"    {mark}{escape(text)}", style=style, highlight=False)
    out.print(f"{result.count(REMOVED)} of {len(result.original)} instructions removed, "
              f"{result.count(FOLDED)} folded into constants; {len(result.simplified)} remain",
              style="dim", highlight=False)


@app.command()
@user_errors
def export(
    program: Path = typer.Argument(..., help="The algorithm, an .az file."),
    to: str = typer.Option("numpy", "--to", help="What to export to: numpy."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="The module to write [default: print it]."),
    optimize: bool = typer.Option(True, help="Leave out dead code first."),
):
    """Write an algorithm as a standalone Python module: a class, fit, predict and fitness."""
    from azc.export import export_file

    exported = export_file(program, to, output, optimize=optimize)
    if output is None:
        typer.echo(exported.source, nl=False)
        return
    dead = (f", {_plural(exported.removed, 'dead instruction')} left out"
            if exported.removed else "")
    out.print(f"wrote {escape(str(output))}{dead}", highlight=False)


@app.command()
@user_errors
def plot(
    run_dir: Path = typer.Argument(..., help="A run directory (azc evolve --out)."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="Image to write, .png/.svg/.pdf (default: RUN/progress.png)."),
):
    """Plot best and mean fitness against individuals and against time."""
    from azc.plot import plot_run

    info = plot_run(run_dir, output)
    out.print(f"wrote {escape(str(info.path))}: {_plural(info.reports, 'progress report')}, "
              f"{_plural(info.experiments, 'finished experiment')}", highlight=False)


@app.command()
@user_errors
def show(
    run_dir: Path = typer.Argument(..., help="A run directory (azc evolve --out)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Summarize a run: status, seed, best program, its fitness, throughput, cache hits."""
    from azc.report import summarize, summary_view

    summary = summarize(run_dir)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        out.print(summary_view(summary), highlight=False)


@app.command()
@user_errors
def ops(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")):
    """List the ops: id, the name experiment files use (ops = [...]), and how it is written."""
    from azc.ops import OPS

    rows = [{"id": op.id, "name": op.name, "form": _written(op), "data": op.data or ""}
            for op in OPS]
    if as_json:
        typer.echo(json.dumps({"ops": rows}))
        return
    table = Table(title="ops (s scalar, v vector, m matrix, c constant)", title_justify="left")
    for column in ("id", "name", "form", "data"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for row in rows:
        table.add_row(*(escape(str(value)) for value in row.values()))
    out.print(table, highlight=False)


def _written(op) -> str:
    """An op's form with operand kinds for addresses: `s = s + s`, `v = uniform(c, c)`."""
    return op.form.format(out=op.out or "", a=(op.ins + ("",))[0], b=(op.ins + ("", ""))[1],
                          d0="c", d1="c", d2="c")


@contextlib.contextmanager
def _debug_log(on: bool):
    """Show the library's debug log (pass dumps) on stderr while active, if `on`."""
    log = logging.getLogger("azc")
    if not on:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def main():
    app(prog_name="azc")


if __name__ == "__main__":
    sys.exit(main())
