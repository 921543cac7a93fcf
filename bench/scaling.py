"""Search throughput on one core against all cores: the island model's speedup.

    python bench/scaling.py [--seconds 30] [--workers N] [--seed 1] [--experiment FILE] [--json]

Runs the experiment (default: the demo, examples/experiments/demo.toml) for a fixed wall time
twice with the same seed: as one population in this process (`azc evolve --workers 1`), then
as N islands in N worker processes (`--workers N`, default: every core here). Each figure is
individuals per second of wall time as the search reports it, start-up included (worker
processes, compiling the evaluators). The speedup is their ratio.

A search that solves its experiment before the time is up stops there; its rate is still over
its own time. Figures taken while other work loads the machine are noisy: run it on a quiet one.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from azc.islands import default_workers
from azc.rundir import evolve

DEMO = Path(__file__).resolve().parent.parent / "examples" / "experiments" / "demo.toml"


def measure(experiment: Path, workers: int, seconds: float, seed: int) -> dict:
    """The search's summary after `seconds` of wall time on `workers` processes."""
    summary = evolve(experiment, seed=seed, max_seconds=seconds, workers=workers)
    return {"workers": workers, "individuals": summary["individuals"],
            "seconds": summary["seconds"],
            "individuals_per_second": summary["individuals_per_second"],
            "experiments": summary["experiments"], "solved": summary["solved"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall time of each run")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="worker processes of the second run [default: the cores here]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--experiment", type=Path, default=DEMO)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    one = measure(args.experiment, 1, args.seconds, args.seed)
    many = measure(args.experiment, args.workers, args.seconds, args.seed)
    speedup = many["individuals_per_second"] / max(one["individuals_per_second"], 1e-9)
    result = {"experiment": str(args.experiment), "seconds": args.seconds, "cores":
              os.cpu_count(), "one": one, "many": many, "speedup": round(speedup, 3)}
    if args.json:
        print(json.dumps(result))
        return
    for run in (one, many):
        print(f"{run['workers']:>3} worker(s): {run['individuals']:>10,} individuals in "
              f"{run['seconds']:6.1f} s = {run['individuals_per_second']:>9,.0f}/s"
              + ("  (solved)" if run["solved"] else ""))
    print(f"speedup {speedup:.2f}x on {args.workers} workers")


if __name__ == "__main__":  # NOTE: worker processes are spawned and import this module
    sys.exit(main())
