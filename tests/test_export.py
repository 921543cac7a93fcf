"""The exported NumPy module against the reference executor: same memory, same fitness."""

import ast
import importlib.util
import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from azc.cli import app
from azc.export import export_file, export_numpy
from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, MemoryShape, Program
from azc.numpy_runtime import Stream as ExportedStream
from azc.ops import OPS, M, S, V, op_named
from azc.parse import parse, parse_file
from azc.passes import eliminate_dead_code
from azc.printer import format_instruction
from azc.reference import Memory, run_component, run_task, sigmoid
from azc.rng import Stream
from azc.tasks import ACCURACY, TaskSpec, make_tasks
from tests.strategies import programs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_count = itertools.count()
runner = CliRunner()


def load(source: str, folder: Path):
    """Import an exported module from a file in `folder`, as a user would."""
    path = folder / f"exported_{next(_count)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported_fitness(module, task, seed=0, task_index=0, **counts):
    return module.fitness(task.train_features, task.train_labels, task.valid_features,
                          task.valid_labels, eval_type=task.eval_type,
                          epoch_orders=task.epoch_orders, seed=seed, task_index=task_index,
                          **counts)


def assert_same_fitness(program, tasks, module, seed=0, **counts):
    for index, task in enumerate(tasks):
        expected = run_task(program, task, seed=seed, task_index=index, **counts).fitness
        got = exported_fitness(module, task, seed=seed, task_index=index, **counts)
        assert got == pytest.approx(expected, abs=1e-9), (task.name, got, expected)


# --- the examples, on the tasks they are made for ----------------------------------------------

LINEAR = TaskSpec("linear", 4, 300, 50, num_tasks=2, num_train_epochs=2)
TEACHER = TaskSpec("nn", 4, 300, 50, num_tasks=2)
DIGITS = TaskSpec("digits", 16, 230, 115, num_tasks=1, eval_type=ACCURACY,
                  options={"classes": [0, 1]})
SPECS = {"linear_regression": LINEAR, "neural_net": TEACHER, "logistic_regression": DIGITS}


def _spec(path: Path) -> TaskSpec:
    return next(spec for prefix, spec in SPECS.items() if path.stem.startswith(prefix))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.az")), ids=lambda p: p.stem)
def test_examples_score_as_in_azc(path, tmp_path):
    program = parse_file(path)
    module = load(export_file(path).source, tmp_path)
    assert_same_fitness(program, make_tasks(_spec(path)), module, seed=3)


def test_examples_export_without_dead_code(tmp_path):
    exported = export_file(EXAMPLES / "linear_regression_padded.az")
    plain = export_file(EXAMPLES / "linear_regression.az")
    assert exported.removed == 12 and plain.removed == 0
    body = exported.source.split("class Algorithm")[1]
    assert body.replace("_padded", "") == plain.source.split("class Algorithm")[1]


def test_unoptimized_export_keeps_every_instruction(tmp_path):
    path = EXAMPLES / "linear_regression_padded.az"
    output = tmp_path / "padded.py"
    result = runner.invoke(app, ["export", str(path), "--no-optimize", "-o", str(output)])
    assert result.exit_code == 0, result.output
    source = output.read_text()
    assert "# noop()" in source and "# m0 = transpose(m0)" in source
    assert_same_fitness(parse_file(path), make_tasks(LINEAR), load(source, tmp_path))


# --- every op on awkward values ----------------------------------------------------------------

AWKWARD = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.7, 1e308, -1e308, 5e-324,
           1e-3, 100.0, 0.99, 0.7, -0.2]
READ_BACK = {S: "SCALAR_ABS", V: "VECTOR_ABS", M: "MATRIX_ABS"}  # makes the output kept memory


@pytest.mark.parametrize("op", [op for op in OPS if op.out is not None], ids=lambda op: op.name)
def test_each_op_on_awkward_values(op, tmp_path):
    instruction = Instruction(op.id, 2, 3, 0, (0.375, 0.625, -1.5)[:op.data_size])
    if op.data in ("uniform", "gaussian"):
        instruction = instruction._replace(data=(-0.5, 0.25))
    program = Program(predict=(Instruction(op_named(READ_BACK[op.out]).id, 1, 2),),
                      learn=(instruction,))
    module = load(export_numpy(program, optimize=False).source, tmp_path)
    shape, F = MemoryShape(4, 4, 4), 4
    values = np.random.RandomState(op.id)

    for trial in range(20):
        memory = Memory(shape, F)
        for bank in memory.banks.values():
            bank[...] = values.choice(AWKWARD, bank.shape)
        model = module.Algorithm.__new__(module.Algorithm)
        model.F, model.rng = F, module.Stream(trial)
        for kind, bank in memory.banks.items():
            for address in range(len(bank)):
                setattr(model, f"{kind}{address}", bank[address].copy())
        features, label = values.choice(AWKWARD, F), values.choice(AWKWARD)

        model.learn(features, label)
        memory.write(V, FEATURES, features)
        memory.write(S, LABEL, label)
        with np.errstate(all="ignore"):
            run_component(program.learn, memory, Stream(trial))
        assert same(getattr(model, f"{op.out}2"), memory.read(op.out, 2)), trial


# --- random programs over every op -------------------------------------------------------------

SMALL = make_tasks(TaskSpec("linear", 4, 6, 4, num_train_epochs=2))[0]


def reference_steps(program, task, steps, classifier, seed=0):
    """s1 after each Predict and the whole memory after each Learn, from the reference."""
    memory = Memory(program.memory_shape(), task.features_size)
    rng = Stream(seed, 0)
    predictions = []
    with np.errstate(all="ignore"):
        run_component(program.setup, memory, rng)
        for i in steps:
            memory.write(V, FEATURES, task.train_features[i])
            memory.write(S, LABEL, 0.0)
            run_component(program.predict, memory, rng)
            predictions.append(memory.read(S, PREDICTION))
            if classifier:
                memory.write(S, PREDICTION, sigmoid(memory.read(S, PREDICTION)))
            memory.write(V, FEATURES, task.train_features[i])
            memory.write(S, LABEL, task.train_labels[i])
            run_component(program.learn, memory, rng)
    return predictions, memory


def exported_steps(module, task, steps, classifier, seed=0):
    model = module.Algorithm(task.features_size, seed)
    predictions = []
    for i in steps:
        predictions.append(model.predict(task.train_features[i]))
        if classifier:
            model.s1 = module.sigmoid(model.s1)
        model.learn(task.train_features[i], task.train_labels[i])
    return predictions, model


TMP = [HealthCheck.function_scoped_fixture]  # each example imports its own module file


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


@settings(max_examples=40, deadline=None, suppress_health_check=TMP)
@given(program=programs(max_size=6))
def test_random_programs_compute_what_the_reference_computes(program, tmp_path):
    steps = [0, 1, 2, 3, 4, 5, 2]
    for classifier in (False, True):
        module = load(export_numpy(program, optimize=False).source, tmp_path)
        expected, memory = reference_steps(program, SMALL, steps, classifier, seed=11)
        got, model = exported_steps(module, SMALL, steps, classifier, seed=11)
        assert same(got, expected)

        # Unoptimized, every address a component reads before writing is kept: compare them all.
        for kind, bank in memory.banks.items():
            for address in range(len(bank)):
                if hasattr(model, f"{kind}{address}"):
                    name = f"{kind}{address}"
                    assert same(getattr(model, name), bank[address]), name


@settings(max_examples=25, deadline=None, suppress_health_check=TMP)
@given(program=programs(max_size=6))
def test_random_programs_score_as_in_azc(program, tmp_path):
    module = load(export_numpy(program).source, tmp_path)
    accuracy = make_tasks(TaskSpec("fixed", 4, 6, 4, num_train_epochs=2, eval_type=ACCURACY,
                                   options=_fixed_classes()))
    assert_same_fitness(program, [SMALL], module, seed=5)
    assert_same_fitness(program, accuracy, module, seed=5)


def _fixed_classes():
    rng = np.random.RandomState(0)
    features = rng.standard_normal((12, 4))
    labels = (features[:, 0] > 0).astype(float)
    return {"train_features": features[:6].tolist(), "train_labels": labels[:6].tolist(),
            "valid_features": features[6:].tolist(), "valid_labels": labels[6:].tolist()}


# --- an evolved-looking program: dead code, random draws in the loop, every kind of op ---------

EVOLVED = """\
def setup():
    s2 = 0.05
    v1 = uniform(-0.1, 0.1)
    m0 = gaussian(0.0, 0.2)
    s5 = sin(s2)
    v2[0.5] = 0.25
    noop()

def predict():
    v3 = m0 @ v0
    v4 = maximum(v3, v5)
    s3 = dot(v4, v1)
    s4 = std(v0)
    s4 = arctan(s4)
    s1 = s3 + s4
    s6 = gaussian(0.0, 0.001)
    s1 = s1 + s6
    m1 = outer(v0, v3)
    s7 = exp(s4)

def learn():
    s3 = s0 - s1
    s3 = s2 * s3
    v6 = s3 * v4
    v1 = v1 + v6
    v7 = s3 * v1
    v8 = heaviside(v3)
    v7 = v8 * v7
    m2 = outer(v7, v0)
    m0 = m0 + m2
    m0[0.25, 0.75] = 0.0
    s5 = log(s2)
    v9 = uniform(0.3, 0.1)
"""


def test_an_evolved_program_scores_as_in_azc(tmp_path):
    program = parse(EVOLVED)
    exported = export_numpy(program)
    assert exported.removed == 7  # noop, s5 twice, v2, m1, s7, v9 (an empty draw: no draws)
    module = load(exported.source, tmp_path)
    tasks = make_tasks(TaskSpec("nn", 4, 200, 50, num_tasks=2, num_train_epochs=3))
    assert_same_fitness(program, tasks, module, seed=7)
    assert_same_fitness(program, tasks, module, seed=7, num_train=450, num_valid=20)


# --- the module's parts ------------------------------------------------------------------------


def test_the_module_needs_only_numpy():
    source = export_file(EXAMPLES / "neural_net.az").source
    imported = {alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in getattr(node, "names", [])}
    assert imported == {"math", "numpy"}


@pytest.mark.skipif(shutil.which("ruff") is None, reason="needs ruff")
@pytest.mark.parametrize("name", ["linear_regression_padded", "neural_net"])
def test_the_module_is_clean_python(name, tmp_path):
    path = tmp_path / f"{name}.py"
    path.write_text(export_file(EXAMPLES / f"{name}.az").source)
    lint = subprocess.run(["ruff", "check", "--isolated", "--line-length", "100", "--select",
                           "E,F,W,B,UP", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_each_line_sits_under_its_azc_instruction():
    program = eliminate_dead_code(parse(EVOLVED))
    lines = [line.strip() for line in export_numpy(program).source.splitlines()]
    for instruction in program.instructions():
        comment = f"# {format_instruction(instruction)}"
        assert comment in lines
        below = lines[lines.index(comment) + 1]
        assert below and not below.startswith("#"), comment


def test_the_stream_is_azcs():
    ours, theirs = ExportedStream(12, 3), Stream(12, 3)
    assert [ours.unit() for _ in range(5)] == [theirs.unit() for _ in range(5)]
    assert ours.gaussian(0.5, 2.0) == theirs.gaussian(0.5, 2.0)
    assert ours.uniform(-1.0, 3.0) == theirs.uniform(-1.0, 3.0)
    assert ours.uniform(1.0, 1.0, (2,)).tolist() == [1.0, 1.0]


def test_fit_and_predict_over_arrays(tmp_path):
    module = load(export_file(EXAMPLES / "linear_regression.az").source, tmp_path)
    task = make_tasks(LINEAR)[0]
    model = module.Algorithm(4)
    assert module.fit(model, task.train_features, task.train_labels, epochs=2)
    predictions = module.predict(model, task.valid_features)
    assert predictions.shape == (50,)
    assert np.sqrt(np.mean((predictions - task.valid_labels) ** 2)) < 0.05

    # a diverging learner stops early, as in azc
    huge = module.Algorithm(4)
    huge.s2 = np.float64(50.0)
    assert not module.fit(huge, task.train_features, task.train_labels)
    with pytest.raises(ValueError, match="expected 4 features"):
        model.predict([1.0, 2.0])


# --- the command -------------------------------------------------------------------------------

runner = CliRunner()


def test_export_command_writes_a_module(tmp_path):
    output = tmp_path / "linear.py"
    result = runner.invoke(app, ["export", str(EXAMPLES / "linear_regression_padded.az"),
                                 "--to", "numpy", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "class Algorithm" in output.read_text()
    assert "12" in result.output  # says how many dead instructions it left out


def test_export_command_prints_without_output(tmp_path):
    result = runner.invoke(app, ["export", str(EXAMPLES / "linear_regression.az")])
    assert result.exit_code == 0
    assert result.output.startswith('"""linear_regression.az')


@pytest.mark.parametrize("arguments, message", [
    (["missing.az"], "no such file"),
    (["{bad}", "--to", "numpy"], "bad.az:2"),
    (["{good}", "--to", "julia"], "unknown export target 'julia'"),
    (["{good}", "-o", "{tmp}/no/such/dir/out.py"], "cannot write"),
    (["{good}", "-o", "{tmp}"], "cannot write"),
])
def test_export_command_errors(arguments, message, tmp_path):
    bad = tmp_path / "bad.az"
    bad.write_text("def predict():\n    s1 = dot(v1 v0)\n")
    fields = {"bad": str(bad), "good": str(EXAMPLES / "linear_regression.az"),
              "tmp": str(tmp_path)}
    result = runner.invoke(app, ["export", *(a.format(**fields) for a in arguments)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
