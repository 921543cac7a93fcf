"""Native failures never reach the user: a program tier 2 cannot compile runs on tier 1, and an
evaluator whose tier-1 code cannot be built runs on the reference executor, both with a warning.

Failures are provoked through real LLVM where possible: the IR of one chosen program is made
invalid, so LLVM itself rejects the module it lands in.
"""

import random

import numpy as np
import pytest

import azc.engine_tier2 as tier2
from azc import engine
from azc.codegen import double
from azc.engine import make_evaluator, program_arrays
from azc.ir import Instruction, Program
from azc.jit import compile_ir
from azc.reference import ReferenceEvaluator, run_task
from azc.tasks import TaskSpec, make_tasks
from tests.test_engine import LINEAR, MEMORY, random_program

MARK = 0.0123456789  # the learning rate of the program whose code LLVM will reject
BAD = LINEAR.replace(setup=(Instruction(56, 2, data=(MARK,)),))


@pytest.fixture
def tasks():
    return make_tasks(TaskSpec("linear", 4, 20, 10, num_tasks=3))


@pytest.fixture
def rejecting(monkeypatch):
    """Tier 2 with a fresh cache whose modules holding BAD's code are invalid IR."""
    real = tier2.module_text

    def module_text(shape, programs):
        text = real(shape, programs)
        if double(MARK) in text:  # a function returning a value it does not have
            text += "\ndefine void @invalid() {\nentry:\n  ret i32 0\n}\n"
        return text

    monkeypatch.setattr(tier2, "module_text", module_text)
    monkeypatch.setattr(engine, "_COMPILED", tier2.CompiledCache())
    return engine._COMPILED


def test_invalid_ir_is_an_exception_not_an_abort():
    with pytest.raises(RuntimeError):
        compile_ir("define void @f() {\nentry:\n  ret i32 0\n}\n", ["f"])


def test_a_program_tier2_cannot_compile_runs_on_tier1_and_is_named(tasks, rejecting, caplog):
    rand = random.Random(4)
    programs = [random_program(rand) for _ in range(12)]
    programs.insert(7, BAD)
    native = make_evaluator(tasks, MEMORY, engine="jit", seed=2)
    reference = ReferenceEvaluator(tasks, MEMORY, seed=2)
    with caplog.at_level("WARNING", logger="azc"):
        got = native.fitness_batch(programs)
    expected = [reference.evaluate(p).fitness for p in programs]
    assert list(got) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert "tier-2 compilation failed for program 7 of a batch of 13" in caplog.text
    assert "RuntimeError" in caplog.text and native.used == {"interp"}

    # The others were compiled one by one and kept; the bad one is not tried again.
    assert len(rejecting.failed) == 1 and len(rejecting.entries) >= 10
    compiled = rejecting.compiled
    caplog.clear()
    with caplog.at_level("WARNING", logger="azc"):
        again = native.fitness_batch([BAD, LINEAR])
    assert list(again) == [reference.evaluate(BAD).fitness, reference.evaluate(LINEAR).fitness]
    assert "program 0 of a batch of 2" in caplog.text and rejecting.compiled == compiled + 1

    # The process goes on: a batch without it runs on tier 2.
    native.used.clear()
    rest = programs[:7] + programs[8:]
    assert list(native.fitness_batch(rest)) == list(np.delete(got, 7))
    assert native.used == {"jit"}


def test_a_failing_program_in_fingerprints_falls_back_too(tasks, rejecting, caplog):
    native = make_evaluator(tasks, MEMORY, engine="jit", num_train=10, num_valid=5, seed=9)
    with caplog.at_level("WARNING", logger="azc"):
        prints = native.fingerprints([LINEAR, BAD])
    assert "program 1 of a batch of 2" in caplog.text
    for t, task in enumerate(tasks):
        run = run_task(BAD, task, memory=MEMORY, num_train=10, num_valid=5, seed=9,
                       task_index=t, record=True)
        assert list(prints.train_errors[1, t, :prints.train_counts[1, t]]) == run.train_errors


def test_tier1_build_failure_falls_back_to_the_reference(tasks, monkeypatch, caplog):
    def broken(shape):
        raise RuntimeError("LLVM ERROR: cannot select")

    monkeypatch.setattr(engine, "_KERNELS", {})
    monkeypatch.setattr(engine, "Kernel", broken)
    rand = random.Random(8)
    programs = [random_program(rand) for _ in range(6)] + [LINEAR]
    native = make_evaluator(tasks, MEMORY, seed=5, num_train=10, num_valid=5)
    reference = ReferenceEvaluator(tasks, MEMORY, seed=5, num_train=10, num_valid=5)
    with caplog.at_level("WARNING", logger="azc"):
        got = native.fitness_batch(programs)
    assert "cannot build the native evaluator (LLVM ERROR: cannot select)" in caplog.text
    expected = [reference.evaluate(p) for p in programs]
    assert list(got) == [e.fitness for e in expected]
    assert native.evaluate(LINEAR) == expected[-1]
    assert list(native.fitness_arrays(*program_arrays(programs), MEMORY)) == list(got)
    prints = native.fingerprints(programs)
    for p, program in enumerate(programs):
        for t, task in enumerate(tasks):
            run = run_task(program, task, memory=MEMORY, num_train=10, num_valid=5, seed=5,
                           task_index=t, record=True)
            count = prints.train_counts[p, t]
            assert count == len(run.train_errors)
            assert list(prints.train_errors[p, t, :count]) == run.train_errors
            assert list(prints.valid_errors[p, t, :prints.valid_counts[p, t]]) == run.valid_errors


def test_tier1_build_failure_of_fitness_arrays_first(tasks, monkeypatch, caplog):
    monkeypatch.setattr(engine, "_KERNELS", {})
    monkeypatch.setattr(engine, "Kernel", lambda shape: 1 / 0)
    native = make_evaluator(tasks, MEMORY, ops=range(1, 65))
    programs = [LINEAR, Program(predict=(Instruction(21, 1, 0),))]
    with caplog.at_level("WARNING", logger="azc"):
        got = native.fitness_arrays(*program_arrays(programs), MEMORY)
    assert "cannot build the native evaluator (division by zero)" in caplog.text
    assert list(got) == list(ReferenceEvaluator(tasks, MEMORY).fitness_batch(programs))
