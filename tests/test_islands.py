"""The island model: migration, determinism, restarts of killed workers, run directories, CLI."""

import json
import os
import random
import signal

import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from azc.cli import app
from azc.experiment import load_experiment
from azc.generator import Generator
from azc.ir import Program
from azc.island import Island, ProgramCodec, experiment_from_text, read_instruction
from azc.islands import IslandSearch, island_seeds, read_island_states
from azc.mutator import Mutator
from azc.parse import parse
from azc.printer import format_instruction, format_program
from azc.rundir import evolve, read_progress
from azc.search import Monitor
from tests.strategies import instructions, programs
from tests.test_experiment import TINY

ISLANDS = TINY.replace("[experiments]", "[islands]\nmigrate_every = 100\n"
                                        "deterministic = true\n\n[experiments]")


def experiment(text=ISLANDS, **changes):
    for old, new in changes.items():
        text = text.replace(old, new)
    return experiment_from_text(text)


class Records(Monitor):
    def __init__(self):
        self.records, self.done = [], []

    def progress(self, record):
        self.records.append(record)

    def experiment_done(self, record):
        self.done.append(record)


def test_program_codec_parses_like_the_parser():
    exp = load_experiment("examples/experiments/demo.toml")
    mutator = Mutator(exp.mutation, random.Random(0))
    generator = Generator("random", exp.sizes, mutator)
    codec = ProgramCodec()
    programs = [generator.initial_program() for _ in range(30)]
    programs += [mutator.mutate(p) for p in programs]
    for program in programs:
        text = format_program(program)
        assert codec.parse(text) == parse(text) == program
    assert len(codec._lines) < sum(len(c) for p in programs for c in p.components()) / 2
    odd = "def learn():\n    s3 = s0 - s1\n\ndef setup():\n  s2 = 0.5\n"
    assert codec.parse(odd) == parse(odd)


@settings(max_examples=300, deadline=None)
@given(instructions())
def test_an_instruction_line_reads_back_as_the_parser_reads_it(instruction):
    line = format_instruction(instruction)
    (parsed,) = parse(f"def setup():\n    {line}\n").setup
    read = read_instruction(line)
    assert read == parsed == instruction
    assert format_instruction(read) == line  # the same bits: -0.0 stays -0.0


@settings(max_examples=100, deadline=None)
@given(programs())
def test_the_codec_prints_as_the_printer_and_reads_back(program):
    codec = ProgramCodec()
    for _ in range(2):  # printed, then from its caches
        assert codec.format(program) == format_program(program)
    assert codec.parse(format_program(program)) == program
    negated = Program(*(tuple(i._replace(data=tuple(-d for d in i.data)) for i in c)
                        for c in program.components()))
    assert codec.format(negated) == format_program(negated)  # -0.0 is not 0.0


@pytest.mark.parametrize("line", ["v2[1.5] = 1.0", "m0 = norm(m0)", "s1 = 0.50", "s1 = 1e400",
                                  "s1 = inf", "s1 = s0 -  s2", "s1 = 1 / s0 # note"])
def test_lines_not_canonical_are_left_to_the_parser(line):
    assert read_instruction(line) is None


def test_island_seeds_are_distinct_and_do_not_depend_on_the_count():
    seeds = island_seeds(7, 4)
    assert len(set(seeds)) == 4 and island_seeds(7, 2) == seeds[:2]
    assert island_seeds(8, 2) != seeds[:2]


def test_immigrants_replace_the_oldest_and_join_as_the_youngest():
    island = Island(experiment(), 0, seed=1, engine="reference")
    json.loads(island.handle(json.dumps({"command": "begin", "experiment": 0,
                                         "task_seed": 3, "eval_seed": 4})))
    evolution = island.search.current.evolution
    before = list(evolution.population)
    answer = json.loads(island.handle(json.dumps(
        {"command": "evolve", "until": 20, "max_train_steps": 10**9, "seconds": 10.0,
         "migrate_every": 20})))
    assert answer["at_migration"] and len(answer["emigrants"]) == 10
    for text, fitness in answer["emigrants"]:
        assert parse(text) in evolution.population and fitness in evolution.fitness
    assert evolution.population == before  # 20 individuals: the initial population only

    newcomers = [[format_program(before[0]), 0.123]] * 3
    young = evolution.population[3:]
    island.handle(json.dumps({"command": "evolve", "until": 20, "max_train_steps": 10**9,
                              "seconds": 10.0, "immigrants": newcomers}))
    assert evolution.population == young + [before[0]] * 3
    assert evolution.fitness[-3:] == [0.123] * 3


def test_an_island_never_builds_the_select_tasks(monkeypatch):
    # the driver scores candidates on them; islands used to build them every experiment
    import azc.search
    from azc.tasks import TaskSpec

    built = []
    make_collection = azc.search.make_collection

    def recording(specs: list[TaskSpec]):
        built.extend(spec.num_tasks for spec in specs)
        return make_collection(specs)

    monkeypatch.setattr(azc.search, "make_collection", recording)
    exp = experiment()
    island = Island(exp, 0, seed=1, engine="reference")
    for index in range(2):
        island.handle(json.dumps({"command": "begin", "experiment": index, "task_seed": 3,
                                  "eval_seed": 4}))
    assert built == [spec.num_tasks for spec in exp.search_tasks] * 2
    # a single search still scores on them, made when first asked for
    assert island.search.current.select_evaluator.fitness_batch(
        [island.search.current.evolution.best()[0]])
    assert built[-len(exp.select_tasks):] == [spec.num_tasks for spec in exp.select_tasks]


def test_the_select_evaluator_is_made_in_the_background_and_scores_alike():
    from azc.islands import _Current

    search = IslandSearch(experiment(), 1, islands=2)
    program = parse("def setup():\n    s2 = 0.5\n\ndef predict():\n    s1 = dot(v0, v0)\n\n"
                    "def learn():\n    s3 = s0 - s1\n")
    current = _Current(0, 3, 4, lambda: search.select_evaluator(3, 4), [])
    current.prepare_select()
    expected = search.select_evaluator(3, 4).fitness_batch([program])[0]
    assert current.select_fitness(program) == expected

    failing = _Current(0, 3, 4, lambda: 1 / 0, [])
    failing.prepare_select()
    with pytest.raises(ZeroDivisionError):
        failing.select_fitness(program)


def test_deterministic_islands_repeat_and_migrate():
    runs = []
    for _ in range(2):
        records = Records()
        search = IslandSearch(experiment(), 5, islands=2, engine="reference",
                              monitors=[records])
        runs.append((search.run().summary(), records))
    (first, records), (second, _) = runs
    assert first["best_program"] == second["best_program"]
    assert first["select_fitness"] == second["select_fitness"]
    assert first["islands"] == 2 and first["experiments"] == 2
    assert {r["island"] for r in records.records} == {0, 1}
    assert all(done["migrations"] > 0 for done in records.done)
    # The shared budget: each island spends about half of each experiment's train steps.
    assert max(r["train_steps"] for r in records.records) < 30_000 * 1.2


class SlowIsland1:
    """Worker processes whose island 1 answers 0.2 s late (it waits that long for its next
    command); records each island's last answer."""

    def __init__(self, count, setup):
        from azc.process_islands import ProcessIslands

        self.inner, self.last, self.held = ProcessIslands(count, setup), {}, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def wait(self, timeout):
        import time

        answers = []
        for island, answer in self.inner.wait(0.01 if self.held else timeout):
            if island == 1 and answer is not None:
                self.held.append((time.monotonic() + 0.2, island, answer))
            else:
                answers.append((island, answer))
        now = time.monotonic()
        answers += [(island, answer) for due, island, answer in self.held if due <= now]
        self.held = [entry for entry in self.held if entry[0] > now]
        for island, answer in answers:
            if answer is not None and "train_steps" in answer:
                self.last[island] = json.loads(answer)
        return answers


@pytest.mark.parametrize("deterministic", [True, False])
def test_asynchronous_islands_share_one_budget_and_finish_together(deterministic, monkeypatch):
    text = ISLANDS.replace("max_train_steps = 30_000", "max_train_steps = 100_000")
    text = text.replace("max_experiments = 2", "max_experiments = 1")
    exp = experiment(text, **{"deterministic = true": f"deterministic = {deterministic}".lower()})
    search = IslandSearch(exp, 3, islands=2, engine="reference", progress_seconds=0.05)
    search.transport = SlowIsland1(2, search.setup())
    from azc.islands import _Current

    prepared, prepare = [], _Current.prepare_select
    monkeypatch.setattr(_Current, "prepare_select",
                        lambda current: prepared.append(current) or prepare(current))
    search.run()
    assert len(prepared) == 1  # the select evaluator, made before the end of the experiment
    steps = {island: answer["train_steps"] for island, answer in search.transport.last.items()}
    generation = 20 * 12 * 2  # steps of one generation: 20 individuals, 12 examples, 2 tasks
    if deterministic:  # 1/W each, however slow an island is
        assert all(50_000 <= s < 50_000 + generation for s in steps.values())
    else:  # the quicker island took more than half, the two together about the budget (each
        # limit counts the other island's steps as last reported, here 0.2 s late)
        assert steps[0] > 50_000 + generation
        assert 100_000 <= sum(steps.values()) <= 100_000 + 10 * generation


def test_asynchronous_islands_solve_and_stop_on_sufficient_fitness():
    exp = experiment(**{"deterministic = true": "deterministic = false",
                        "max_experiments = 2": "max_experiments = 0\n"
                                               "sufficient_fitness = 0.3"})
    outcome = IslandSearch(exp, 2, islands=2, engine="reference").run()
    assert outcome.solved and outcome.select_fitness > 0.3 and outcome.final_fitness


class Killer(Monitor):
    """Kills island 1's worker once it has reported twice (after a checkpoint)."""

    def __init__(self):
        self.search, self.reports, self.killed = None, 0, None

    def progress(self, record):
        if record.get("island") == 1 and "event" not in record and self.killed is None:
            self.reports += 1
            if self.reports == 2:
                self.killed = record["island_individuals"]
                os.kill(self.search.transport.pid(1), signal.SIGKILL)


def test_a_killed_worker_is_restarted_from_its_checkpoint(tmp_path):
    path = tmp_path / "islands.toml"
    path.write_text(ISLANDS.replace("max_train_steps = 30_000", "max_train_steps = 200_000")
                    .replace("max_experiments = 2", "max_experiments = 1"))
    killer = Killer()
    exp = load_experiment(path)
    from azc.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.create(exp, 4)
    search = IslandSearch(exp, 4, islands=2, engine="reference", checkpoint_seconds=0,
                          progress_seconds=0.1, monitors=[killer, run])
    killer.search = search
    outcome = search.run()
    assert killer.killed is not None
    assert outcome.restarts == 1 and not outcome.interrupted and outcome.experiments == 1
    records = read_progress(tmp_path / "run")
    (restart,) = [r for r in records if r.get("event") == "island_restarted"]
    assert restart["island"] == 1 and restart["resumed_individuals"] == killer.killed > 0
    after = [r for r in records[records.index(restart):] if r.get("island") == 1
             and "event" not in r]
    assert after and after[0]["island_individuals"] >= killer.killed
    assert set(read_island_states(tmp_path / "run")) == {0, 1}


def test_run_directory_resume_and_cli(tmp_path):
    path = tmp_path / "islands.toml"
    path.write_text(ISLANDS)
    first = evolve(path, seed=9, out=tmp_path / "a", engine="reference", workers=2,
                   checkpoint_seconds=0, max_seconds=1.5)
    states = read_island_states(tmp_path / "a")
    checkpoint = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert checkpoint["islands"] == 2
    if first["interrupted"]:
        assert set(states) == {0, 1}
        assert all(state["experiment"]["population"] for state in states.values())
    resumed = evolve(None, resume=tmp_path / "a", engine="reference")
    assert resumed["islands"] == 2 and resumed["experiments"] == 2 and resumed["best_program"]
    assert not resumed["interrupted"]

    result = CliRunner().invoke(app, ["evolve", str(path), "--workers", "2", "--seed", "1",
                                      "--json", "--no-save", "--engine", "reference"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["islands"] == 2 and summary["best_program"]


def test_one_worker_is_the_single_population_path(tmp_path):
    path = tmp_path / "islands.toml"
    path.write_text(ISLANDS)
    summary = evolve(path, seed=3, engine="reference", workers=1)
    assert "islands" not in summary


@pytest.mark.parametrize("bad", ["migrate_every = 0", "migrate_every = -5"])
def test_bad_island_settings_name_the_key(tmp_path, bad):
    path = tmp_path / "bad.toml"
    path.write_text(ISLANDS.replace("migrate_every = 100", bad))
    with pytest.raises(Exception, match="islands.migrate_every"):
        load_experiment(path)


class DyingTransport:
    """A transport whose island 1 dies whenever it is asked anything."""

    def __init__(self, real):
        self.real, self.starts = real, 0

    def start(self, island):
        self.starts += island == 1
        self.real.start(island)

    def send(self, island, message):
        if island == 1:
            os.kill(self.real.pid(1), signal.SIGKILL)
        self.real.send(island, message)

    def wait(self, timeout):
        return self.real.wait(timeout)

    def close(self):
        self.real.close()


def test_an_island_that_keeps_dying_ends_the_run():
    from azc.process_islands import ProcessIslands

    search = IslandSearch(experiment(), 5, islands=2, engine="reference")
    search.transport = DyingTransport(ProcessIslands(2, search.setup()))
    with pytest.raises(RuntimeError, match="island 1 died 4 times"):
        search.run()
    assert search.transport.starts == 4


def test_live_and_plain_views_show_every_island_and_restarts():
    import io

    from rich.console import Console

    from azc.live import LiveView, PlainView

    record = {"experiment": 0, "individuals": 10, "seconds": 1.0, "individuals_per_second": 10.0,
              "train_steps": 5, "mean": 0.1, "stdev": 0.0, "best": 0.5, "cache_hit_rate": 0.0}
    restart = {"event": "island_restarted", "island": 1, "experiment": 0, "individuals": 10,
               "seconds": 1.0, "resumed_individuals": 7}
    text = io.StringIO()
    view = LiveView(Console(file=text, force_terminal=True, width=100), budget=100)
    with view:
        view.progress({**record, "island": 0})
        view.progress({**record, "island": 1, "best": 0.25})
        view.progress(restart)
    assert "island 0: best 0.500000" in view.stats.plain
    assert "island 1: best 0.250000" in view.stats.plain
    assert "island 1 died; restarted from its checkpoint (7 individuals)" in text.getvalue()

    text = io.StringIO()
    plain = PlainView(Console(file=text, width=200), every_seconds=0)
    plain.progress({**record, "island": 1})
    plain.progress(restart)
    assert "island=1 exp=0" in text.getvalue() and "island 1 died" in text.getvalue()


def interrupted_island_run(tmp_path):
    """Two islands cut short mid-experiment, every island checkpointed."""
    path = tmp_path / "islands.toml"
    path.write_text(ISLANDS.replace("max_train_steps = 30_000", "max_train_steps = 10_000_000"))
    run = tmp_path / "a"
    first = evolve(path, seed=9, out=run, engine="reference", workers=2, checkpoint_seconds=0,
                   max_seconds=2)
    assert first["interrupted"] and set(read_island_states(run)) == {0, 1}
    return run, first


def test_resume_refuses_a_lost_or_damaged_island(tmp_path):
    run, _ = interrupted_island_run(tmp_path)
    island = run / "islands" / "island-1.json"
    text = island.read_text()
    # (damage, what the message says): the whole path, and no KeyError's bare key
    for damage, says in ((lambda: island.write_text(text[: len(text) // 2]), "damaged"),
                         (lambda: island.write_text('{"x": 1}'), "not an island checkpoint"),
                         (island.unlink, "missing"),
                         (island.mkdir, "cannot read")):
        damage()
        result = CliRunner().invoke(app, ["evolve", "--resume", str(run), "--engine",
                                          "reference", "--max-time", "1"])
        assert result.exit_code == 2, result.output
        assert str(island) in " ".join(result.output.split()), result.output
        assert says in result.output and "Traceback" not in result.output
    island.rmdir()

    # A checkpoint written before it counted each island's individuals: the log tells.
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    del checkpoint["experiment"]["island_individuals"]
    (run / "checkpoint.json").write_text(json.dumps(checkpoint))
    result = CliRunner().invoke(app, ["evolve", "--resume", str(run), "--engine", "reference",
                                      "--max-time", "1"])
    assert result.exit_code == 2 and "progress.jsonl records" in result.output, result.output


def test_resume_goes_on_from_the_run_total(tmp_path):
    run, first = interrupted_island_run(tmp_path)
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    saved = checkpoint["individuals_before"] + sum(checkpoint["experiment"]
                                                   ["island_individuals"])
    before = len(read_progress(run))
    evolve(None, resume=run, engine="reference", max_seconds=first["seconds"] + 1)
    after = [r for r in read_progress(run)[before:] if "event" not in r]
    assert after and after[0]["individuals"] >= saved > 0
    assert after[0]["individuals"] > after[0]["island_individuals"]


def test_worker_start_is_announced_and_too_many_workers_warned(tmp_path, monkeypatch):
    monkeypatch.setattr("azc.islands.default_workers", lambda: 1)
    path = tmp_path / "islands.toml"
    path.write_text(ISLANDS)
    result = CliRunner().invoke(app, ["evolve", str(path), "--workers", "2", "--no-save",
                                      "--engine", "reference", "--max-time", "1"])
    assert result.exit_code == 0, result.output
    assert "more than this machine's 1 core;" in result.output
    assert "starting 2 island workers" in result.output


@pytest.mark.parametrize("workers", [1, 2])
def test_a_resumed_run_finds_data_relative_to_the_experiment_file(tmp_path, monkeypatch,
                                                                   workers):
    folder = tmp_path / "experiments"
    (folder / "data").mkdir(parents=True)
    rows = "\n".join(f"{i % 7},{i % 5},{i % 3},{i % 2},{(i % 7) - (i % 3)}" for i in range(60))
    (folder / "data" / "d.csv").write_text("a,b,c,d,y\n" + rows + "\n")
    csv = '[[{}]]\nkind = "csv"\npath = "data/d.csv"\nvalid = 0.25\n'
    text = ISLANDS[:ISLANDS.index("[[search_tasks]]")]
    text = text.replace("max_train_steps = 30_000", "max_train_steps = 10_000_000")
    (folder / "islands.toml").write_text(text + csv.format("search_tasks") + "\n"
                                         + csv.format("select_tasks"))
    monkeypatch.chdir(tmp_path)
    first = evolve("experiments/islands.toml", seed=9, out="run", engine="reference",
                   workers=workers, checkpoint_seconds=0, max_seconds=0.5)
    assert first["interrupted"]

    # Resumed from elsewhere: the run's copy of the experiment is in run/, its data is not.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = evolve(None, resume=tmp_path / "run", engine="reference",
                     max_seconds=first["seconds"] + 1)
    assert resumed["individuals"] > first["individuals"]


def test_an_island_that_cannot_be_built_is_an_error_not_a_restart(tmp_path):
    from azc.process_islands import ProcessIslands

    search = IslandSearch(experiment(), 1, islands=2, engine="reference")
    setup = {**search.setup(), "experiment": "name = 3\n"}
    search.transport = ProcessIslands(2, setup)
    with pytest.raises(RuntimeError, match="could not be built"):
        search.run()
    assert search.outcome.restarts == 0
