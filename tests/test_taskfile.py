"""Task collections from TOML task files and from command-line flags."""

import re

import numpy as np
import pytest

from azc.errors import ConfigError
from azc.taskfile import load_task_file, make_collection, task_specs_from_flags
from azc.tasks import TaskSpec


def write(tmp_path, text, name="tasks.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load_task_file(write(tmp_path, text))
    return str(info.value)


def test_defaults_per_kind(tmp_path):
    linear, = load_task_file(write(tmp_path, '[[tasks]]\nkind = "linear"\n'))
    assert linear == TaskSpec("linear", 4, 1000, 100, 1, 10, (), (), "rms", {})
    specs = load_task_file(write(tmp_path, """
[[tasks]]
kind = "nn"
features = 16
num_tasks = 1

[[tasks]]
kind = "digits"
classes = [1, 0]
num_tasks = 2
data_seeds = [5]
"""))
    assert specs[1] == TaskSpec("digits", 16, 230, 115, 1, 2, (), (5,), "accuracy",
                                {"classes": [1, 0]})
    tasks = make_collection(specs)
    assert len(tasks) == 3 and tasks[2].name == "digits 0v1 seed 6"


def test_csv_fractions_and_features_from_the_file(tmp_path):
    rows = "\n".join(f"{i},{i % 3},{2 * i}" for i in range(50))
    (tmp_path / "data").mkdir()
    write(tmp_path / "data", "x1,x2,y\n" + rows + "\n", "d.csv")
    specs = load_task_file(write(tmp_path, """
[[tasks]]
kind = "csv"
path = "data/d.csv"     # relative to the task file
valid = 0.2
num_tasks = 1
"""))
    spec = specs[0]
    assert (spec.features_size, spec.num_train_examples, spec.num_valid_examples) == (2, 40, 10)
    assert spec.options == {"path": str(tmp_path / "data" / "d.csv"), "standardize": True}
    task = make_collection(specs)[0]
    np.testing.assert_allclose(task.train_features.mean(axis=0), 0.0, atol=1e-12)

    whole = '[[tasks]]\nkind = "csv"\ntrain = 50\npath = "data/d.csv"\n'
    with pytest.raises(ConfigError, match=r"tasks.toml:3: tasks\[0\].train: 50 train examples "
                       r"leave no valid examples: the file has 50 rows"):
        load_task_file(write(tmp_path, whole))
    tiny = '[[tasks]]\nkind = "csv"\nvalid = 0.001\npath = "data/d.csv"\n'
    with pytest.raises(ConfigError, match=r"tasks\[0\].valid: gives 0 of the file's 50 rows"):
        load_task_file(write(tmp_path, tiny))


@pytest.mark.parametrize("text, message", [
    ('[[tasks]]\nkind = "lineer"\n', r"tasks.toml:2: tasks\[0\].kind: unknown task kind 'lineer'"),
    ('[[tasks]]\nkind = "linear"\n\n[[tasks]]\nkind = "nn"\nclasses = [0, 1]\n',
     r"tasks.toml:6: tasks\[1\].classes: only digits, cifar10, mnist tasks take 'classes'"),
    ('[[tasks]]\nfeatures = 5\n', r"tasks.toml:2: tasks\[0\].features: must be one of 2, 4, 8"),
    ('[[tasks]]\ntrain = 0.5\n', r"tasks.toml:2: tasks\[0\].train: must be a whole number"),
    ('[[tasks]]\ntrain = 3\nepochs = 2\n', r"train x epochs must be at least 10, got 3 x 2"),
    ('[[tasks]]\nkind = "csv"\n', r"tasks.toml:1: tasks\[0\].path: csv tasks need the data file"),
    ('[[tasks]]\nkind = "csv"\npath = "no.csv"\n', r"tasks.toml:3: .*no.csv: no such file"),
    ('[[tasks]]\nkind = "digits"\neval = "rms"\n', r"tasks.toml:3: .*eval must be 'accuracy'"),
    ('[[tasks]]\nkind = "linear"\neval = "accuracy"\n', r"eval must be 'rms'"),
    ('[[tasks]]\nkind = "digits"\nclasses = [3, 3]\n', r"tasks.toml:3: .*two different class"),
    ('[[tasks]]\nnum_taks = 3\n', r"tasks.toml:2: tasks\[0\].num_taks: .*did you mean 'num_tasks'"),
    ('[[tasks]]\ndata_seeds = [1, -2]\n', r"tasks.toml:2: .*data_seeds: element 1: must be at"),
    ('seed = 3\n[[tasks]]\n', r"tasks.toml:1: seed: unknown key"),
    ('[[tasks]]\n\n[[tasks]]\nkind = "digits"\n',
     r"tasks.toml:3: tasks\[1\].features: .*share one feature size: 16 here, 4 in the first"),
    ('# nothing\n', r"no \[\[tasks\]\] table"),
    ('[[tasks]\n', r"tasks.toml:1: invalid TOML"),
])
def test_task_file_errors(tmp_path, text, message):
    assert re.search(message, error_of(tmp_path, text))


def test_flags_name_the_flag():
    with pytest.raises(ConfigError, match="^--features: must be one of"):
        task_specs_from_flags(features=3)
    with pytest.raises(ConfigError, match="^--tasks: must be at least 1"):
        task_specs_from_flags(num_tasks=0)
    with pytest.raises(ConfigError, match="^--data: csv tasks need the data file"):
        task_specs_from_flags(kind="csv")


def test_flags_defaults():
    assert task_specs_from_flags() == [TaskSpec("linear", 4, 1000, 100, num_tasks=10)]
    spec, = task_specs_from_flags(kind="nn", features=8, train=100, data_seeds=[3])
    assert (spec.kind, spec.features_size, spec.num_train_examples, spec.data_seeds) == (
        "nn", 8, 100, (3,))
