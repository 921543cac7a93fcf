"""What `azc evolve` shows while it runs: a rich live view on a terminal, plain lines otherwise.

Both are search Monitors. The live view keeps a panel with a progress bar toward the
experiment's train budget, throughput, cache hit rate, best and mean fitness and the current
best program; each improvement prints a diff against the previous best above the panel.
"""

import time

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from azc.diff import program_diff
from azc.printer import format_program
from azc.search import Monitor


def _event(record: dict) -> str | None:
    """The line for an event record (a restarted island), None for a progress report."""
    if record.get("event") == "island_restarted":
        return (f"island {record['island']} died; restarted from its checkpoint "
                f"({record['resumed_individuals']:,} individuals)")
    return "" if "event" in record else None


def _line(record: dict) -> str:
    island = "" if record.get("island") is None else f"island={record['island']} "
    return (f"{island}exp={record['experiment']} indivs={record['individuals']} "
            f"secs={record['seconds']:.1f} indivs/s={record['individuals_per_second']:.0f} "
            f"mean={record['mean']:.6f} stdev={record['stdev']:.6f} best={record['best']:.6f} "
            f"cache_hits={record['cache_hit_rate']:.1%}")


def _printed_event(console: Console, record: dict) -> bool:
    """Print a record that is an event rather than a progress report; whether it was one."""
    event = _event(record)
    if event:
        console.print(event, highlight=False)
    return event is not None


class PlainView(Monitor):
    """One line per progress report and per finished experiment, for logs and pipes."""

    def __init__(self, console: Console, every_seconds: float = 10.0):
        self.console = console
        self.every = every_seconds
        self._last = -float("inf")

    def progress(self, record: dict):
        if _printed_event(self.console, record):
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.console.print(_line(record), highlight=False, soft_wrap=True)

    def experiment_done(self, record: dict):
        self.console.print(f"experiment {record['experiment']} done: search fitness "
                           f"{record['search_fitness']:.6f}, select fitness "
                           f"{record['select_fitness']:.6f}", highlight=False)


class LiveView(Monitor):
    """A rich panel redrawn a few times a second; improvements scroll above it as diffs."""

    def __init__(self, console: Console, budget: int):
        self.console = console
        self.budget = budget
        self.bar = Progress(TextColumn("experiment {task.fields[experiment]}"), BarColumn(),
                            TextColumn("{task.percentage:>3.0f}% of train budget"),
                            TimeRemainingColumn(), console=console)
        self.task = self.bar.add_task("budget", total=budget, experiment=0)
        self.stats = Text("starting…")
        self.islands: dict = {}  # island -> its latest progress report
        self.program = Text("")
        self.live = Live(self._render(), console=console, refresh_per_second=4,
                         transient=True)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def _render(self):
        return Panel(Group(self.bar, self.stats, self.program), title="azc evolve",
                     title_align="left")

    def progress(self, record: dict):
        if _printed_event(self.console, record):
            return
        self.bar.update(self.task, completed=min(record["train_steps"], self.budget),
                        experiment=record["experiment"])
        # With islands, one line per island (its latest report).
        self.islands[record.get("island")] = record
        lines = [f"{'' if i is None else f'island {i}: '}best {r['best']:.6f}  mean "
                 f"{r['mean']:.6f}  stdev {r['stdev']:.6f}" for i, r in self.islands.items()]
        self.stats = Text(
            f"{record['individuals']:,} individuals, {record['individuals_per_second']:,.0f}/s, "
            f"cache hits {record['cache_hit_rate']:.1%}\n" + "\n".join(lines))
        self.live.update(self._render())

    def improved(self, program, fitness, previous):
        self.program = Text(format_program(program).rstrip(), style="cyan")
        if previous is not None:
            lines = program_diff(previous, program, simplify=True)
            if lines:
                self.console.print(f"[bold]best fitness {fitness:.6f}[/]")
                for line in lines:
                    style = "green" if line[:1] == "+" else "red" if line[:1] == "-" else "dim"
                    self.console.print(f"[{style}]{escape(line)}[/]", highlight=False)
        self.live.update(self._render())

    def experiment_done(self, record: dict):
        self.islands.clear()
        self.bar.reset(self.task, total=self.budget, experiment=record["experiment"] + 1)
        self.console.print(f"experiment {record['experiment']} done: search fitness "
                           f"{record['search_fitness']:.6f}, select fitness "
                           f"{record['select_fitness']:.6f}", highlight=False)
