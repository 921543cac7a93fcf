"""Reading a run directory for people: the progress log checked line by line, and a summary.

    log     = read_progress_log(run)     # every line checked; a damaged log is an AzcError
    summary = summarize(run)             # status, seed, best program, fitness, throughput

The run directory's layout is azc.rundir's. Its progress log holds two kinds of records:
progress reports (no "event" key: experiment, individuals, seconds, best, mean, ...) and
"experiment_done" events; either may carry an "island" once several populations evolve at
once. A killed run can leave a partial last line, which is skipped without a word; any other
line that is not a record of the right shape names its line and stops the reader.
"""

import json
import math
import os
import socket
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from azc.errors import AzcError

PROGRESS_LOG = "progress.jsonl"
OWNER_FILE = "owner.json"  # host and pid of the process running the run (azc.rundir)

# Fields a record must have, and whether each is a whole number (else any real number).
REPORT_FIELDS = {"experiment": True, "individuals": True, "seconds": False, "best": False,
                 "mean": False}
EVENT_FIELDS = {"experiment": True, "individuals": True, "seconds": False}
OPTIONAL_NUMBERS = ("individuals_per_second", "stdev", "cache_hit_rate", "evaluations",
                    "train_steps", "search_fitness", "select_fitness", "best_select_fitness")

# Without result.json, a run whose files changed this recently is taken to be running.
RUNNING_WITHIN_SECONDS = 300.0


@dataclass
class ProgressLog:
    """The checked records of a progress log, in file order."""

    reports: list[dict] = field(default_factory=list)  # progress reports
    experiments_done: list[dict] = field(default_factory=list)  # "experiment_done" events
    partial_last_line: bool = False

    def islands(self) -> list:
        """The islands named in the reports, in order of appearance ([None] for one population)."""
        return list(dict.fromkeys(record.get("island") for record in self.reports))


def run_directory(path: str | Path) -> Path:
    """`path` if it holds a run (a run.json), else an AzcError saying what it is instead."""
    path = Path(path)
    if not path.exists():
        raise AzcError(f"{path}: no such directory")
    if not path.is_dir():
        raise AzcError(f"{path}: not a run directory (a file; give the folder "
                       "`azc evolve --out` wrote)")
    if not (path / "run.json").exists():
        raise AzcError(f"{path}: not a run directory (no run.json; `azc evolve --out DIR` "
                       "makes one)")
    return path


def read_progress_log(path: str | Path) -> ProgressLog:
    """Every record of the run's progress log, checked; a damaged log raises AzcError."""
    file = run_directory(path) / PROGRESS_LOG
    if not file.exists():
        raise AzcError(f"{file}: no progress log (the run has not reported yet, or the file "
                       "was removed)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise AzcError(f"{file}: cannot read the progress log: {problem}") from None

    log = ProgressLog()
    lines = text.split("\n")
    # NOTE: every record is written with its newline in one call, so a killed run can only
    # leave an unfinished last line: one not ended by a newline.
    unfinished = lines.pop()
    for number, line in enumerate(lines, 1):
        _add(log, _record(file, number, line))
    if unfinished.strip():
        try:
            _add(log, _record(file, len(lines) + 1, unfinished))
        except AzcError:
            log.partial_last_line = True
    return log


def _record(file: Path, number: int, line: str) -> dict:
    where = f"{file}:{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise AzcError(f"{where}: damaged progress log: not a JSON record: "
                       f"{_excerpt(line)}") from None
    if not isinstance(record, dict):
        raise AzcError(f"{where}: damaged progress log: a record must be a JSON object, got "
                       f"{_excerpt(line)}")
    event = record.get("event")
    if event is not None and event != "experiment_done":
        return record  # NOTE: events of later versions are kept, and ignored by readers
    required = EVENT_FIELDS if event else REPORT_FIELDS
    for name, whole in required.items():
        if name not in record:
            raise AzcError(f"{where}: damaged progress log: the record has no {name!r}")
        _check_number(where, name, record[name], whole)
    for name in OPTIONAL_NUMBERS:
        if record.get(name) is not None:
            _check_number(where, name, record[name], False)
    island = record.get("island")
    if isinstance(island, bool) or not isinstance(island, int | str | None):
        raise AzcError(f"{where}: damaged progress log: 'island' must be a number or a name, "
                       f"got {island!r}")
    return record


def _check_number(where: str, name: str, value, whole: bool):
    kind = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "a whole number" if whole else "a number"
        raise AzcError(f"{where}: damaged progress log: {name!r} must be {wanted}, got "
                       f"{json.dumps(value)}")


def _excerpt(line: str, width: int = 60) -> str:
    line = line.strip()
    return repr(line if len(line) <= width else line[:width] + "…")


def _add(log: ProgressLog, record: dict):
    event = record.get("event")
    if event is None:
        log.reports.append(record)
    elif event == "experiment_done":
        log.experiments_done.append(record)


# --- the summary ---------------------------------------------------------------------------------


def _json_file(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise AzcError(f"{path}: damaged run file: {problem}") from None


def summarize(path: str | Path, now: float | None = None) -> dict:
    """What a run is and has found so far, as JSON-ready values.

    status is "finished" (result.json says so), "stopped" (at the time limit, --max-time),
    "interrupted" (by Ctrl-C, or killed: no result.json and no activity lately) or "running";
    `status_detail` says which.
    A damaged progress log does not stop the summary: it becomes a warning.
    """
    run = run_directory(path)
    meta = _json_file(run / "run.json")
    if not isinstance(meta, dict):
        raise AzcError(f"{run / 'run.json'}: damaged run file: not a JSON object")
    result = _json_file(run / "result.json") if (run / "result.json").exists() else None
    warnings = []
    checkpoint = None
    resumable = result is None or result.get("interrupted")
    if resumable and (run / "checkpoint.json").exists():
        try:
            checkpoint = _json_file(run / "checkpoint.json")
        except AzcError as problem:
            warnings.append(f"{problem}; the run cannot be resumed from it")
    try:
        log = read_progress_log(run)
    except AzcError as problem:
        log = ProgressLog()
        warnings.append(str(problem))
    last = log.reports[-1] if log.reports else {}

    summary = {
        "run": str(run), "experiment": _experiment_name(run, result), "seed": meta.get("seed"),
        "experiment_file": meta.get("experiment"), "azc": meta.get("azc"),
        **_status(run, result, now),
        "search_fitness": None, "select_fitness": None, "final_fitness": None,
        "solved": None, "experiments": None,
        "individuals": last.get("individuals"), "seconds": last.get("seconds"),
        "individuals_per_second": last.get("individuals_per_second"),
        "current": None, "cache_hit_rates": _cache_hit_rates(log),
        "best_program": _best_program(run, result), "warnings": warnings,
    }
    if resumable and (run / "checkpoint.json").exists() and checkpoint is None:
        summary["status_detail"] = summary["status_detail"].split("; continue it")[0]
    if result is not None:
        for key in ("search_fitness", "select_fitness", "final_fitness", "solved",
                    "experiments", "individuals", "seconds", "individuals_per_second",
                    "final_tasks"):
            summary[key] = result.get(key)
        if result.get("select_fitness") is None:  # no experiment ended: nothing was selected
            summary["search_fitness"] = None
    else:
        # Still running, or killed: the best of the finished experiments is in the checkpoint.
        outcome = (checkpoint if isinstance(checkpoint, dict) else {}).get("outcome") or {}
        if outcome.get("select_fitness") is not None:
            summary["search_fitness"] = outcome.get("search_fitness")
            summary["select_fitness"] = outcome.get("select_fitness")
        summary["experiments"] = outcome.get("experiments", len(log.experiments_done))
    # The current experiment's progress, unless the run ended normally.
    if last and (result is None or result.get("interrupted")):
        summary["current"] = {"experiment": last["experiment"], "best": last["best"],
                              "mean": last["mean"], "island": last.get("island")}
    return summary


def final_label(summary: dict) -> str:
    """What the final fitness was measured on: unseen tasks, or (an experiment without
    [[final_tasks]]) the select tasks that chose the program."""
    return "(the select tasks)" if summary.get("final_tasks") == "select" else "(unseen tasks)"


def _experiment_name(run: Path, result: dict | None) -> str | None:
    if result is not None and result.get("experiment"):
        return result["experiment"]
    try:
        document = tomllib.loads((run / "experiment.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return document.get("name", "experiment")


def _status(run: Path, result: dict | None, now: float | None) -> dict:
    if result is not None:
        if result.get("time_limit"):
            return {"status": "stopped",
                    "status_detail": "stopped at the time limit (--max-time); continue it with "
                                     "`azc evolve --resume`"}
        if result.get("interrupted"):
            return {"status": "interrupted",
                    "status_detail": "stopped early; continue it with `azc evolve --resume`"}
        detail = "solved" if result.get("solved") else "out of experiments or train steps"
        return {"status": "finished", "status_detail": detail}
    owner = _owner_alive(run)
    if owner:
        return {"status": "running", "status_detail": "its process is alive"}
    if owner is False:
        return {"status": "interrupted",
                "status_detail": "its process ended without a result: stopped while it "
                                 "started, or killed; continue it with `azc evolve --resume`"}
    # Run on another machine (or by an azc without owner.json): told by its silence.
    now = time.time() if now is None else now
    files = [run / name for name in ("run.json", PROGRESS_LOG, "checkpoint.json", "best.az")]
    latest = max(file.stat().st_mtime for file in files if file.exists())
    quiet = now - latest
    if quiet < RUNNING_WITHIN_SECONDS:
        return {"status": "running", "status_detail": f"last activity {quiet:.0f} s ago"}
    return {"status": "interrupted",
            "status_detail": f"killed? no result and no activity for {quiet / 60:.0f} min; "
                             "continue it with `azc evolve --resume`"}


def _owner_alive(run: Path) -> bool | None:
    """Whether the process that runs `run` is alive; None if that cannot be told from here."""
    try:
        owner = json.loads((run / OWNER_FILE).read_text(encoding="utf-8"))
        host, pid = owner["host"], owner["pid"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if host != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's
        return True
    return True


def _best_program(run: Path, result: dict | None) -> str | None:
    if result is not None and result.get("best_program"):
        return result["best_program"]
    best = run / "best.az"
    return best.read_text(encoding="utf-8") if best.exists() else None


def _cache_hit_rates(log: ProgressLog) -> list[dict]:
    """The last cache hit rate reported per experiment (and island)."""
    last = {}
    for record in log.reports:
        if record.get("cache_hit_rate") is not None:
            last[record["experiment"], record.get("island")] = record
    return [{"experiment": experiment, "island": island,
             "cache_hit_rate": record["cache_hit_rate"],
             "evaluations": record.get("evaluations")}
            for (experiment, island), record in last.items()]


def finite(value) -> bool:
    """Whether `value` is a number that prints as one (not None, NaN or infinite)."""
    return isinstance(value, int | float) and math.isfinite(value)


# --- the rich view -------------------------------------------------------------------------------


def _fitness(value) -> str:
    return f"{value:.6f}" if finite(value) else "-"


def summary_view(summary: dict):
    """The summary as rich renderables: a table of facts, the best program, warnings."""
    from rich.console import Group
    from rich.markup import escape
    from rich.syntax import Syntax
    from rich.table import Table

    colours = {"finished": "green", "running": "yellow", "stopped": "yellow",
               "interrupted": "red"}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    status = summary["status"]
    rows = [
        ("run", escape(summary["run"])),
        ("experiment", escape(f"{summary['experiment']}  ({summary['experiment_file']})")),
        ("seed", str(summary["seed"])),
        ("status", f"[{colours.get(status, 'white')}]{status}[/] "
                   f"({escape(summary['status_detail'])})"),
        ("fitness", f"search {_fitness(summary['search_fitness'])}, select "
                    f"{_fitness(summary['select_fitness'])}, final {final_label(summary)} "
                    f"{_fitness(summary['final_fitness'])}"),
    ]
    current = summary["current"]
    if current is not None:
        island = "" if current["island"] is None else f", island {current['island']}"
        rows.append(("now", f"experiment {current['experiment']}{island}: population best "
                            f"{_fitness(current['best'])}, mean {_fitness(current['mean'])}"))
    if summary["individuals"] is not None:
        rate = summary["individuals_per_second"]
        rows.append(("throughput", f"{summary['individuals']:,} individuals in "
                                   f"{summary['seconds']:.1f} s"
                                   + (f" ({rate:,.0f}/s)" if finite(rate) else "")))
    if summary["experiments"] is not None:
        rows.append(("experiments", f"{summary['experiments']} done"))
    rates = [f"{rate['cache_hit_rate']:.1%} (experiment {rate['experiment']}"
             + ("" if rate["island"] is None else f", island {rate['island']}") + ")"
             for rate in summary["cache_hit_rates"]]
    if rates:
        shown = rates[-6:]
        rows.append(("cache hits", ("…, " if len(rates) > len(shown) else "")
                     + ", ".join(shown)))
    for name, value in rows:
        facts.add_row(name, value)

    parts = [facts]
    if summary["best_program"]:
        parts += ["", "[bold]best program[/]",
                  Syntax(summary["best_program"].rstrip(), "python", theme="ansi_dark")]
    for warning in summary["warnings"]:
        parts.append(f"[yellow]warning:[/] {escape(warning)}")
    return Group(*parts)
