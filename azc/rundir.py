"""Run directories: what a search leaves on disk, readable at any moment.

    run.json          seed, experiment file name, azc version            (written once)
    experiment.toml   the experiment as given                            (written once)
    progress.jsonl    one JSON object per progress report, appended
    best.az           the best program so far, as azc text: the current experiment's best
                      while it runs, the reported solution once the search ends
    checkpoint.json   the search state: population as azc text, fitnesses, random state
    islands/island-N.json   with several islands (azc.islands): island N's own state, while
                      checkpoint.json holds the driver's
    result.json       the outcome, once the search ends
    owner.json        the host and process id of the azc process running it (or that last did)

Every file but progress.jsonl is replaced atomically (temp file, fsync, os.replace), so a run
killed at any moment leaves the previous version whole. A killed run may leave a partial last
line in progress.jsonl; readers skip it. Nothing is pickled.
"""

import json
import logging
import os
import socket
import time
from pathlib import Path

from azc import __version__
from azc.config import read_toml
from azc.errors import AzcError
from azc.experiment import Experiment, experiment_from, load_experiment
from azc.printer import format_program
from azc.report import OWNER_FILE
from azc.search import Monitor, Search

log = logging.getLogger("azc")


def write_atomic(path: Path, text: str):
    """Replace `path` by `text` so that readers see the old or the new file, never a mix."""
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


class RunDir(Monitor):
    """A search's run directory; as a Monitor it records progress, best programs, checkpoints."""

    wants_checkpoints = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._log = None

    def create(self, experiment: Experiment, seed: int):
        """Start a new run: refuses a directory that already holds one."""
        if (self.path / "run.json").exists():
            raise AzcError(f"{self.path} already holds a run; resume it with --resume "
                           f"{self.path}, or choose another --out")
        if self.path.exists() and not self.path.is_dir():
            raise AzcError(f"--out {self.path}: is a file, not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path / "experiment.toml", experiment.text)
        except OSError as error:
            raise AzcError(f"--out {self.path}: cannot create the run directory: "
                           f"{error.strerror or error}") from None
        source = os.path.abspath(experiment.path) if experiment.path else None
        write_atomic(self.path / "run.json", json.dumps(
            {"seed": seed, "experiment": source, "azc": __version__}, indent=1) + "\n")

    def claim(self):
        """Record this process as the run's: `azc show` tells a run that ended without a word
        (a Ctrl-C while it started, a kill) by this process being gone."""
        write_atomic(self.path / OWNER_FILE, json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid()}) + "\n")

    def load(self) -> tuple[Experiment, int, dict | None]:
        """The experiment, seed and latest checkpoint (None if none was written yet)."""
        run = self.path / "run.json"
        if not run.exists():
            raise AzcError(f"{self.path}: not a run directory (no run.json)")
        meta = read_json(run)
        if not isinstance(meta, dict) or not isinstance(meta.get("seed"), int):
            raise AzcError(f"{run}: not a run.json azc wrote (no seed); the run cannot be resumed")
        experiment = experiment_from(read_toml(self.path / "experiment.toml"),
                                     experiment_folder(meta))
        checkpoint = self.path / "checkpoint.json"
        if checkpoint.exists():
            state = read_json(checkpoint)
            if not isinstance(state, dict) or "outcome" not in state:
                raise AzcError(f"{checkpoint}: not a checkpoint azc wrote; the run cannot be "
                               "resumed")
            return experiment, meta["seed"], state
        # NOTE: a run killed before its first checkpoint has no progress records either (the
        # first generation reports, then checkpoints): its loss is at most one generation.
        done = [r.get("individuals", 0) for r in read_progress(self.path) if "event" not in r]
        if done and max(done) > 0:
            raise AzcError(f"{checkpoint}: missing, though progress.jsonl records "
                           f"{max(done):,} individuals: the search state is lost. Start a new "
                           "run, or delete progress.jsonl to run this one again from the start")
        log.warning("%s: no checkpoint yet (killed before its first one): the run starts from "
                    "the beginning, with its seed", self.path)
        return experiment, meta["seed"], None

    def result(self) -> dict | None:
        path = self.path / "result.json"
        return read_json(path) if path.exists() else None

    # --- Monitor -------------------------------------------------------------------------------

    def progress(self, record: dict):
        if self._log is None:
            _drop_partial_line(self.path / "progress.jsonl")
            self._log = open(self.path / "progress.jsonl", "a", encoding="utf-8")
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()

    def experiment_done(self, record: dict):
        self.progress({"event": "experiment_done", **record})

    def checkpoint(self, state: dict):
        write_atomic(self.path / "checkpoint.json", json.dumps(state))

    def island_checkpoint(self, island: int, state: dict):
        folder = self.path / "islands"
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"island-{island}.json", json.dumps(state))

    def improved(self, program, fitness, previous):
        write_atomic(self.path / "best.az", format_program(program))

    def finish(self, summary: dict):
        write_atomic(self.path / "result.json", json.dumps(summary, indent=1) + "\n")
        if summary.get("best_program"):
            write_atomic(self.path / "best.az", summary["best_program"])
        if self._log is not None:
            self._log.close()
            self._log = None


def experiment_folder(meta: dict) -> Path:
    """The folder of the experiment file a run started from (`meta`: its run.json): relative
    data paths in the run's copy of the experiment are taken from there, not from the run."""
    return Path(meta.get("experiment") or ".").parent


def read_json(path: Path):
    """A JSON file of a run directory; a damaged one is an AzcError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AzcError(f"{path}: damaged ({error}); the run cannot be resumed from it") from None
    except OSError as error:
        raise AzcError(f"{path}: cannot read: {error.strerror}") from None


def _drop_partial_line(path: Path):
    """Cut a killed run's unfinished last line, so a resumed run appends whole lines."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        file.truncate(file.read().rfind(b"\n") + 1)


def read_progress(path: str | Path) -> list[dict]:
    """The progress records of a run directory, skipping a partial last line."""
    records = []
    file = Path(path) / "progress.jsonl"
    if not file.exists():
        return records
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def evolve(experiment_path: str | Path, *, seed: int | None = None, out: str | Path | None = None,
           resume: str | Path | None = None, max_seconds: float = float("inf"),
           monitors=(), checkpoint_seconds: float = 30.0, engine: str = "auto",
           workers: int | None = 1, ray: str | None = None) -> dict:
    """Run (or resume) a search, recording it in a run directory; its summary.

    Without `out` or `resume` nothing is written; `out="auto"` makes runs/<name>-<seed>-<time>.
    A new run without a seed takes one from the operating system and records it. `workers` > 1
    or `ray` (a cluster address, or "auto") run islands (azc.islands); a resumed run goes on
    the way it started.
    """
    from azc.runner import ENGINES

    if engine not in ENGINES:
        raise AzcError(f"--engine: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if resume is not None:
        rundir = RunDir(resume)
        finished = rundir.result()
        if finished is not None and not finished.get("interrupted"):
            log.warning("%s already finished: nothing to resume; its result follows", resume)
            return {**finished, "run_directory": str(rundir.path)}
        experiment, seed, state = rundir.load()
        spent = (state or {}).get("seconds", 0.0)
        if spent >= max_seconds:
            log.warning("the run has already used %.0f s, more than max_seconds %g (on a resume "
                        "the whole run's time counts): it stops after one round", spent,
                        max_seconds)
    else:
        experiment = load_experiment(experiment_path)
        seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
        if out == "auto":
            out = Path("runs") / f"{experiment.table.name}-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        rundir, state = (RunDir(out) if out is not None else None), None
        if rundir is not None:
            rundir.create(experiment, seed)

    if rundir is not None:
        rundir.claim()
    listeners = list(monitors) + ([rundir] if rundir is not None else [])
    options = dict(monitors=listeners, max_seconds=max_seconds,
                   checkpoint_seconds=checkpoint_seconds, engine=engine)
    try:
        if (state or {}).get("islands") or (state is None and (ray or (workers or 1) > 1)):
            from azc.islands import island_search

            search = island_search(experiment, seed, workers=workers, ray=ray, state=state,
                                   run=rundir.path if rundir else None, **options)
        else:
            search = Search(experiment, seed, **options)
            if state is not None:
                search.restore(state)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if state is None:
            raise
        raise AzcError(f"{rundir.path / 'checkpoint.json'}: not a checkpoint this azc can "
                       f"resume ({type(error).__name__}: {error})") from None
    log.info("search with seed %d", seed)
    summary = {"seed": seed, "experiment": experiment.table.name,
               "run_directory": str(rundir.path) if rundir is not None else None,
               **search.run().summary(),
               "final_tasks": "unseen" if experiment.final_tasks_unseen else "select"}
    # A stop at max_seconds is the run's plan, not an accident: say which it was.
    summary["time_limit"] = bool(summary["interrupted"] and summary["seconds"] >= max_seconds)
    if rundir is not None:
        rundir.finish(summary)
    return summary
