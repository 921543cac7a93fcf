"""Tune the baselines' learning rates on the digits experiment's search tasks.

    for each baseline in examples/baselines/*.az:
        for each learning rate on a log grid:
            fitness = mean over program seeds of the mean accuracy on the search tasks
        keep the best rate; with --write, put it and the table's summary into the file

Only the search tasks are used, as evolution only sees those: the select and final tasks stay
unseen by the baselines too. The learning rate is the constant on the line marked
`# learning rate`; the file's header comment starting `# bench/tune_baselines.py:` gets the result.

    python bench/tune_baselines.py [--write] [--engine auto]
"""

import argparse
import re
import statistics
import textwrap
from pathlib import Path

from azc.experiment import load_experiment
from azc.parse import parse
from azc.runner import make_evaluator
from azc.taskfile import make_collection

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "examples" / "experiments" / "digits.toml"
BASELINES = sorted((ROOT / "examples" / "baselines").glob("*.az"))
RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
SEEDS = (0, 1, 2, 3, 4)

RATE_LINE = re.compile(r"^(\s*s\d+ = )(\S+)(\s*# learning rate)$", re.MULTILINE)
# The result: the header line starting so, and its continuation lines indented under it.
RESULT = re.compile(r"^# bench/tune_baselines\.py:.*\n(#   .*\n)*", re.MULTILINE)


def with_rate(text: str, rate: float) -> str:
    if len(RATE_LINE.findall(text)) != 1:
        raise SystemExit("a baseline needs exactly one line marked '# learning rate'")
    return RATE_LINE.sub(lambda m: f"{m[1]}{rate!r}{m[3]}", text)


def fitness(text: str, tasks, memory, engine: str) -> float:
    program = parse(text)
    scores = [make_evaluator(engine, tasks, memory, seed=seed).evaluate(program).fitness
              for seed in SEEDS]
    return statistics.fmean(scores)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the baseline files")
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()

    experiment = load_experiment(EXPERIMENT)
    tasks = make_collection(experiment.search_tasks)
    for path in BASELINES:
        text = path.read_text()
        results = {rate: fitness(with_rate(text, rate), tasks, experiment.memory, args.engine)
                   for rate in RATES}
        best = max(results, key=results.get)
        print(f"{path.name}: " + "  ".join(f"{r:g}: {f:.4f}" for r, f in results.items())
              + f"  -> {best:g}")
        if args.write:
            path.write_text(RESULT.sub(lambda m, r=results: result_lines(r),
                                       with_rate(text, best), count=1))


def result_lines(results: dict) -> str:
    """The header comment recording the tuning: the rate chosen and the whole grid."""
    best = max(results, key=results.get)
    summary = (f"# bench/tune_baselines.py: lr {best:g}, mean search accuracy "
               f"{results[best]:.4f} over program seeds {SEEDS[0]}-{SEEDS[-1]}; grid lr=accuracy: "
               + ", ".join(f"{r:g}={f:.3f}" for r, f in results.items()))
    return "\n".join(textwrap.wrap(summary, 99, subsequent_indent="#   ")) + "\n"

if __name__ == "__main__":
    main()
