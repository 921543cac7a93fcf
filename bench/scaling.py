"""Search throughput on one core against all cores: the island model's speedup.

    python bench/scaling.py [--seconds 60] [--workers N] [--seed 1] [--experiment FILE] [--json]

Runs the experiment (default: the demo, examples/experiments/demo.toml) for a fixed wall time
twice with the same seed: as one population in this process (`azc evolve --workers 1`), then
as N islands in N worker processes (`--workers N`, default: every core here). Its sufficient
fitness is dropped, so both search for the whole time (experiment after experiment) rather
than stop when solved. Each figure is individuals per second of wall time as the search
reports it, start-up included (worker processes, compiling evaluators); `speedup` is their
ratio, `speedup_after_start_up` the ratio from each run's first progress report on.

Figures taken while other work loads the machine are noisy: run it on a quiet one (the load
average before each run and at the end is printed). The CPU seconds each run got, and its
individuals per CPU second, tell a busy machine (fewer CPU seconds than workers x wall time)
from a slow search.
"""

import argparse
import json
import os
import re
import resource
import sys
import tempfile
from pathlib import Path

from azc.islands import default_workers
from azc.rundir import evolve
from azc.search import Monitor

DEMO = Path(__file__).resolve().parent.parent / "examples" / "experiments" / "demo.toml"


class FirstReport(Monitor):
    """Remembers the first progress report: where start-up ends."""

    def __init__(self):
        self.first = None

    def progress(self, record: dict):
        if self.first is None and "event" not in record:
            self.first = record


def endless(experiment: Path, folder: Path) -> Path:
    """The experiment without its sufficient fitness: experiments go on until the time is up."""
    text = experiment.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^sufficient_fitness\s*=.*$", "", text)
    path = folder / experiment.name
    path.write_text(text, encoding="utf-8")
    return path


def measure(experiment: Path, workers: int, seconds: float, seed: int) -> dict:
    """The search's throughput over `seconds` of wall time on `workers` processes."""
    start = FirstReport()
    load = os.getloadavg()[0]  # before the run: work of others, not of this benchmark
    cpu = _cpu_seconds()
    summary = evolve(experiment, seed=seed, max_seconds=seconds, workers=workers,
                     monitors=[start])
    cpu = _cpu_seconds() - cpu
    first = start.first or {"individuals": 0, "seconds": 0.0}
    steady = ((summary["individuals"] - first["individuals"])
              / max(summary["seconds"] - first["seconds"], 1e-9))
    return {"workers": workers, "individuals": summary["individuals"],
            "seconds": summary["seconds"],
            "individuals_per_second": summary["individuals_per_second"],
            "after_start_up": round(steady, 1), "start_up_seconds": first["seconds"],
            "experiments": summary["experiments"], "cpu_seconds": round(cpu, 1),
            "individuals_per_cpu_second": round(summary["individuals"] / max(cpu, 1e-9), 1),
            "load_average_before": round(load, 2)}


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="wall time of each run")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="worker processes of the second run [default: the cores here]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--experiment", type=Path, default=DEMO)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        experiment = endless(args.experiment, Path(folder))
        one = measure(experiment, 1, args.seconds, args.seed)
        many = measure(experiment, args.workers, args.seconds, args.seed)
    speedup = many["individuals_per_second"] / max(one["individuals_per_second"], 1e-9)
    steady = many["after_start_up"] / max(one["after_start_up"], 1e-9)
    result = {"experiment": str(args.experiment), "seconds": args.seconds,
              "cores": default_workers(), "load_average": os.getloadavg()[0], "one": one,
              "many": many, "speedup": round(speedup, 3),
              "speedup_after_start_up": round(steady, 3)}
    if args.json:
        print(json.dumps(result))
        return
    for run in (one, many):
        print(f"{run['workers']:>3} worker(s): {run['individuals']:>10,} individuals in "
              f"{run['seconds']:6.1f} s = {run['individuals_per_second']:>9,.0f}/s "
              f"({run['after_start_up']:,.0f}/s after {run['start_up_seconds']:.1f} s of "
              f"start-up; {run['cpu_seconds']:.0f} CPU s, "
              f"{run['individuals_per_cpu_second']:,.0f}/CPU s; load average "
              f"{run['load_average_before']:.1f} before)")
    print(f"speedup {speedup:.2f}x on {args.workers} workers ({steady:.2f}x after start-up); "
          f"load average {result['load_average']:.1f}")


if __name__ == "__main__":  # NOTE: worker processes are spawned and import this module
    sys.exit(main())
