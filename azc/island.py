"""One island of the island model: a population that evolves on command, spoken to in JSON.

An island holds a regularized-evolution population (azc.evolve) built exactly as the single
population of azc.search builds its own, but with its own random stream and the experiment's
seeds handed in by the driver (azc.islands). It understands three commands, each a JSON object
answered by one:

    begin   {experiment, task_seed, eval_seed[, state]}  new population (or a checkpoint's)
    evolve  {until, max_train_steps, seconds, immigrants, checkpoint}
            place the immigrants, then generations until `until` individuals of this experiment,
            the island's share of train steps, or `seconds`; answer with statistics, the best
            program, emigrants when a migration point was reached, and the state if asked
    state   the island's state, to restart it after a crash

Programs travel as azc text (azc.printer / azc.parse), never pickled: a process or a Ray actor
on another machine needs nothing but this module and the experiment's text.
"""

import json
import logging
import re
import string
import time
import tomllib
from functools import cache
from pathlib import Path

from azc.config import TomlFile
from azc.experiment import Experiment, experiment_from
from azc.ir import COMPONENTS, Instruction, Program, instruction_key
from azc.ops import OPS, f32
from azc.parse import parse
from azc.printer import format_instruction
from azc.search import Search, _without_cyclic_gc

log = logging.getLogger("azc")


def experiment_from_text(text: str, path: str = "", folder: str | None = None) -> Experiment:
    """An experiment from its file's text; relative data paths are taken from `folder`, else
    from `path`'s folder."""
    name = path or "experiment.toml"
    base = Path(folder) if folder is not None else Path(name).parent
    return experiment_from(TomlFile(name, text, tomllib.loads(text)), base)


class ProgramCodec:
    """azc text to Program and back, parsing each distinct instruction line once.

    Populations share most instructions, so migrants' text is mostly lines seen before; a
    whole-program parse costs ~3 ms, a cached line nothing. A new line is read by its op's
    form (read_instruction), ~50 times faster than the parser. Text must be canonical (as
    format_program writes it); anything else goes through the full parser.
    """

    def __init__(self, size: int = 200_000):
        self.size = size
        self._lines: dict[str, object] = {}
        self._texts: dict[object, str] = {}  # instruction_key -> line

    def format(self, program: Program) -> str:
        """format_program's text, each distinct instruction printed once."""
        blocks = []
        for name, component in zip(COMPONENTS, program.components(), strict=True):
            body = [self._text(instruction) for instruction in component] or ["pass"]
            blocks.append("\n    ".join([f"def {name}():", *body]))
        return "\n\n".join(blocks) + "\n"

    def _text(self, instruction) -> str:
        key = instruction_key(instruction)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= self.size:
                self._texts.clear()
            text = self._texts[key] = format_instruction(instruction)
        return text

    def parse(self, text: str) -> Program:
        components, current = {}, None
        for line in text.splitlines():
            if line.startswith("def ") and line.endswith("():"):
                current = line[4:-3]
                if current not in COMPONENTS or current in components:
                    return parse(text)
                components[current] = []
            elif line.startswith("    ") and current is not None:
                if line != "    pass":
                    components[current].append(self._instruction(line))
            elif line.strip():
                return parse(text)
        return Program(**{name: tuple(body) for name, body in components.items()})

    def _instruction(self, line: str):
        instruction = self._lines.get(line)
        if instruction is None:
            if len(self._lines) >= self.size:
                self._lines.clear()
            instruction = read_instruction(line[4:])
            if instruction is None:
                (instruction,) = parse(f"def setup():\n{line}\n").setup
            self._lines[line] = instruction
        return instruction


NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"  # a number as format_number writes it (finite)


@cache
def _line_forms() -> list[tuple]:
    """Per op: a regex matching its canonical lines, and the slot each group fills."""
    forms = []
    for op in OPS:
        kinds = dict(zip(("out", "a", "b"), (op.out, *op.ins), strict=False))
        pattern, slots = "", []
        for literal, slot, _, _ in string.Formatter().parse(op.form):
            pattern += re.escape(literal)
            if slot is not None:
                pattern += f"{kinds[slot]}([0-9]+)" if slot in kinds else NUMBER
                slots.append(slot)
        forms.append((re.compile(pattern), op, slots))
    return forms


def read_instruction(line: str) -> Instruction | None:
    """The instruction of a canonical line (no indentation), read by its op's form; None if
    no single op's form matches, or the line is not the canonical text of what it reads as
    (the parser then decides, or explains)."""
    read = []
    for pattern, op, slots in _line_forms():
        match = pattern.fullmatch(line)
        if match is None:
            continue
        fields, data = {"out": 0, "a": 0, "b": 0}, [0.0] * op.data_size
        for slot, text in zip(slots, match.groups(), strict=True):
            if slot in fields:
                fields[slot] = int(text)
            else:  # as azc.parse stores data: float64 for op 56's value, else float32
                data[int(slot[1:])] = float(text) if op.data == "const" else f32(float(text))
        read.append(Instruction(op.id, fields["out"], fields["a"], fields["b"], tuple(data)))
    if len(read) != 1:
        return None
    # NOTE: printing back to the same text rules out what the parser would round or refuse
    # (other spellings of a number, non-finite values); index fractions it would refuse
    # print back alike, so they are checked here.
    (instruction,) = read
    op = OPS[instruction.op]
    indices = {"vindex": 1, "mindex": 2}.get(op.data, 0)
    if not all(0.0 <= d < 1.0 for d in instruction.data[:indices]):
        return None
    try:
        return instruction if format_instruction(instruction) == line else None
    except (OverflowError, ValueError):
        return None


class Island:
    """One population, driven by `handle(message) -> answer`, both JSON text."""

    def __init__(self, experiment: Experiment, index: int, seed: int, engine: str = "auto"):
        self.experiment = experiment
        self.index = index
        self.search = Search(experiment, seed, engine=engine)
        self.codec = ProgramCodec()
        self.experiment_index = None
        self._last_best = None  # text of the best program last sent

    def handle(self, message: str) -> str:
        """Answer one command.

        NOTE: a process that holds an island should disable the cycle collector for its whole
        life (the transports' workers do). Paused only while evolving, it would run its full
        passes over the fitness caches right after each command, on the first allocations:
        ~7% of a worker's time, measured.
        """
        request = json.loads(message)
        command = request.pop("command")
        answer = getattr(self, f"_{command}")(**request)
        return json.dumps({"island": self.index, **answer})

    # --- commands ------------------------------------------------------------------------------

    def _begin(self, experiment: int, task_seed: int, eval_seed: int, state=None) -> dict:
        """Start `experiment` from scratch, or from a checkpoint of this island."""
        search = self.search
        if state is not None and (state.get("experiment") or {}).get("index") == experiment:
            search.restore(state)
        else:
            if state is not None:  # a checkpoint of an earlier experiment: keep its stream
                search.restore({**state, "experiment": None})
            search.current = None
            search.outcome.experiments = experiment
            # NOTE: Search starts an experiment from saved seeds without drawing any.
            search._start_experiment({"task_seed": task_seed, "eval_seed": eval_seed})
            search.current.evolution.initialize()
        self.experiment_index = experiment
        self._last_best = None
        return self._report()

    def _evolve(self, until: int, max_train_steps: int, seconds: float, immigrants=(),
                checkpoint: bool = False, migrate_every: int = 0) -> dict:
        """Place immigrants, then evolve until a stop; see the module docstring."""
        current = self.search.current
        evolution, scorer = current.evolution, current.scorer
        if immigrants:
            self._immigrate(immigrants)

        start = time.monotonic()
        with _without_cyclic_gc():
            while (scorer.individuals < until and scorer.train_steps < max_train_steps
                   and time.monotonic() - start < seconds):
                evolution.generation()
        answer = self._report()
        answer["done"] = scorer.train_steps >= max_train_steps
        answer["at_migration"] = scorer.individuals >= until
        if answer["at_migration"] and migrate_every:
            answer["emigrants"] = self._emigrants()
        if checkpoint:
            answer["state"] = self.search.state()
        return answer

    def _state(self) -> dict:
        return {"state": self.search.state()}

    # --- migration -----------------------------------------------------------------------------

    def _emigrants(self) -> list:
        """Half the population, drawn at random without replacement, as [text, fitness]."""
        evolution = self.search.current.evolution
        size = len(evolution.population)
        chosen = sorted(self.search.rng.sample(range(size), size // 2))
        fitness = evolution.fitness
        return [[self.codec.format(program), fitness[i]]
                for i, program in zip(chosen, evolution.programs_at(chosen), strict=True)]

    def _immigrate(self, immigrants: list):
        """Immigrants replace the oldest individuals and join as the youngest.

        Between generations slot 0 holds the oldest individual and the last slot the youngest
        (azc.evolve), so the survivors move to the front and the immigrants fill the back.
        """
        evolution = self.search.current.evolution
        arrived = [self.codec.parse(text) for text, _ in immigrants]
        fitness = [float(f) for _, f in immigrants]
        count = min(len(arrived), len(evolution.population))
        evolution.immigrate(arrived[:count], fitness[:count])

    def _report(self) -> dict:
        current = self.search.current
        scorer, evolution = current.scorer, current.evolution
        stats = evolution.stats()
        best = self.codec.format(evolution.population[stats.best_index])
        functional = scorer.functional
        answer = {
            "experiment": self.experiment_index, "individuals": scorer.individuals,
            "train_steps": scorer.train_steps, "mean": stats.mean, "stdev": stats.stdev,
            "best": stats.best_fitness, "cache_hit_rate": round(scorer.hit_rate(), 4),
            "fec_hit_rate": (round(functional.hits / max(functional.lookups, 1), 4)
                             if functional else None),
            "evaluations": scorer.evaluations, "budget_rejects": scorer.budget_rejects,
            "hurdle_rejects": scorer.hurdle_rejects,
        }
        if best != self._last_best:
            answer["best_program"] = self._last_best = best
        return answer
