"""Real-data tasks: projected binary classification and user tables, and the file readers."""

import gzip
import os
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from azc import readers
from azc.data import class_pair
from azc.errors import ConfigError, DataError
from azc.tasks import TaskSpec, make_tasks


def digits_spec(**changes):
    fields = dict(kind="digits", features_size=16, num_train_examples=230,
                  num_valid_examples=115, num_tasks=1, data_seeds=(7,), eval_type="accuracy",
                  options={"classes": [1, 0]})
    fields.update(changes)
    return TaskSpec(**fields)


# --- projected binary classification ---------------------------------------------------------


def test_digits_task_matches_generate_datasets_steps():
    """Oracle: the steps of the original's generate_datasets.py, written out with sklearn."""
    task = make_tasks(digits_spec())[0]

    digits = load_digits()
    x = np.concatenate([digits.data[digits.target == c][:173] for c in (0, 1)])
    y = np.repeat([1.0, 0.0], 173)
    train_x, valid_x, train_y, valid_y = train_test_split(
        x, y, train_size=230, test_size=115, stratify=y, random_state=7)
    projection = np.random.RandomState(7).standard_normal((64, 16))
    scaler = StandardScaler().fit(train_x @ projection)

    np.testing.assert_allclose(task.train_features, scaler.transform(train_x @ projection))
    np.testing.assert_allclose(task.valid_features, scaler.transform(valid_x @ projection))
    np.testing.assert_array_equal(task.train_labels, train_y)
    np.testing.assert_array_equal(task.valid_labels, valid_y)
    assert task.eval_type == "accuracy" and task.name == "digits 0v1 seed 7"


def test_digits_task_is_standardized_on_train_and_balanced():
    task = make_tasks(digits_spec())[0]
    np.testing.assert_allclose(task.train_features.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(task.train_features.std(axis=0), 1.0, atol=1e-9)
    assert task.train_labels.sum() == 115 and set(task.valid_labels) == {0.0, 1.0}


def test_seeds_give_different_projections_and_same_seed_the_same():
    a, b = make_tasks(digits_spec(num_tasks=2, data_seeds=(3,)))
    again = make_tasks(digits_spec(data_seeds=(3,)))[0]
    np.testing.assert_array_equal(a.train_features, again.train_features)
    assert not np.allclose(a.train_features, b.train_features)


def test_drawn_pairs_avoid_held_out_pairs():
    held_out = [[4, 6], [3, 5], [8, 9], [3, 8], [0, 9], [2, 9], [1, 8], [3, 6], [0, 5]]
    spec = digits_spec(options={"held_out_pairs": held_out})
    pairs = {class_pair(spec, seed) for seed in range(1000)}
    assert all(p < n for p, n in pairs)
    assert not pairs & {tuple(pair) for pair in held_out}
    assert len(pairs) == 45 - len(held_out)  # every allowed pair shows up


def test_all_pairs_held_out_is_an_error():
    every = [[i, j] for i in range(10) for j in range(i + 1, 10)]
    with pytest.raises(ConfigError, match="every pair"):
        class_pair(digits_spec(options={"held_out_pairs": every}), 0)


def test_too_many_examples_for_a_class():
    with pytest.raises(DataError, match="class 0 has 178 examples"):
        make_tasks(digits_spec(num_train_examples=300))


def test_projected_tasks_must_be_accuracy():
    with pytest.raises(ConfigError, match="accuracy"):
        make_tasks(digits_spec(eval_type="rms"))


# --- CIFAR-10 python batches ---------------------------------------------------------------------


def write_cifar(folder, per_batch=40, protocol=pickle.HIGHEST_PROTOCOL):
    rng = np.random.default_rng(0)
    labels = []
    for name in readers.CIFAR10_TRAIN_BATCHES:
        batch_labels = [i % 10 for i in range(per_batch)]
        batch = {b"batch_label": b"training batch", b"labels": batch_labels,
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [b"x.png"] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        labels += batch_labels
    return labels


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_read_cifar10(tmp_path, protocol):
    labels = write_cifar(tmp_path, protocol=protocol)
    images, read_labels = readers.read_cifar10(tmp_path)
    assert images.shape == (200, 3072) and images.dtype == np.uint8
    assert read_labels.tolist() == labels


def test_cifar10_task(tmp_path):
    write_cifar(tmp_path)
    spec = TaskSpec("cifar10", 4, 20, 10, num_tasks=2, eval_type="accuracy",
                    options={"path": str(tmp_path), "classes": [2, 7]})
    tasks = make_tasks(spec)
    assert [t.train_features.shape for t in tasks] == [(20, 4)] * 2
    assert tasks[0].name.startswith("cifar10 2v7")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_arbitrary_globals(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="data_batch_3.*refusing to load"):
        readers.read_cifar10(tmp_path)


def test_cifar10_missing_batch(tmp_path):
    with pytest.raises(DataError, match="data_batch_1: no such file"):
        readers.read_cifar10(tmp_path)


# --- MNIST IDX files -----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_mnist(tmp_path, gzipped):
    images = np.random.default_rng(1).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    labels = np.arange(100) % 10
    for stem, array in zip(readers.MNIST_TRAIN, (images, labels), strict=True):
        raw = idx_bytes(array)
        name = f"{stem}.gz" if gzipped else stem
        (tmp_path / name).write_bytes(gzip.compress(raw) if gzipped else raw)
    read_images, read_labels = readers.read_mnist(tmp_path)
    np.testing.assert_array_equal(read_images, images.reshape(100, 784))
    np.testing.assert_array_equal(read_labels, labels)

    spec = TaskSpec("mnist", 8, 10, 4, eval_type="accuracy",
                    options={"path": str(tmp_path), "classes": [3, 4]})
    assert make_tasks(spec)[0].valid_features.shape == (4, 8)


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        readers.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 2)))[:-3])
    with pytest.raises(DataError, match="promises 20 bytes, file has 17"):
        readers.read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        readers.read_mnist(tmp_path)


# --- CSV and NPZ tables --------------------------------------------------------------------------


def table_spec(path, kind="csv", F=2, train=10, valid=4, **options):
    return TaskSpec(kind, F, train, valid, num_tasks=2, data_seeds=(5,),
                    options={"path": str(path), **options})


def write_csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


ROWS = "\n".join(f"{i},{2 * i},{3 * i}" for i in range(16)) + "\n"


def test_csv_task_label_last_and_shuffled_by_seed(tmp_path):
    path = write_csv(tmp_path, "a,b,y\n" + ROWS)
    first, second = make_tasks(table_spec(path, standardize=False))
    rows = np.concatenate([first.train_features, first.valid_features])
    labels = np.concatenate([first.train_labels, first.valid_labels])
    np.testing.assert_array_equal(labels, 3 * rows[:, 0])  # rows stay whole
    assert len(set(labels)) == 14 and set(labels) <= {3.0 * i for i in range(16)}
    order = np.random.RandomState(5).permutation(16)
    np.testing.assert_array_equal(first.train_labels, 3.0 * order[:10])
    assert not np.array_equal(first.train_labels, second.train_labels)


def test_csv_label_column_by_name_and_standardized(tmp_path):
    path = write_csv(tmp_path, "a,y,b\n" + ROWS)
    task = make_tasks(table_spec(path, label_column="y"))[0]
    np.testing.assert_allclose(task.train_features.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(task.train_features.std(axis=0), 1.0)
    assert set(task.train_labels) <= {2.0 * i for i in range(16)}


def test_csv_without_header(tmp_path):
    task = make_tasks(table_spec(write_csv(tmp_path, ROWS), standardize=False))[0]
    assert len(task.train_labels) + len(task.valid_labels) == 14


@pytest.mark.parametrize("text, message", [
    ("a,b,y\n1,2,3\n4,5\n", r"d.csv:3: row has 2 fields, expected 3"),
    ("a,b,y\n1,2,3\n4,x,6\n", r"d.csv:3: column 2: 'x' is not a number"),
    ("a,b,y\n1,2,3\n4,nan,6\n", r"d.csv:3: column 2: 'nan' is not a finite number"),
    ("a,b,y\n1,2,3\n", r"has 1 rows, too few for 10 train \+ 4 valid"),
    ("a,b,c,y\n" + ROWS.replace("\n", ",1\n"), r"3 feature columns, but the task asks for 2"),
    ("", r"no rows"),
])
def test_csv_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        make_tasks(table_spec(write_csv(tmp_path, text)))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.csv: no such file"):
        make_tasks(table_spec(tmp_path / "nope.csv"))


def test_accuracy_needs_binary_labels(tmp_path):
    spec = TaskSpec("csv", 2, 10, 4, eval_type="accuracy",
                    options={"path": str(write_csv(tmp_path, ROWS))})
    with pytest.raises(DataError, match="labels 0 or 1"):
        make_tasks(spec)


def test_npz_features_and_labels(tmp_path):
    x = np.arange(32.0).reshape(16, 2)
    np.savez(tmp_path / "d.npz", features=x, labels=x.sum(axis=1))
    task = make_tasks(table_spec(tmp_path / "d.npz", kind="npz", standardize=False))[0]
    np.testing.assert_array_equal(task.train_labels, task.train_features.sum(axis=1))


def test_npz_single_array_and_nan(tmp_path):
    table = np.arange(48.0).reshape(16, 3)
    np.savez(tmp_path / "d.npz", table=table)
    assert make_tasks(table_spec(tmp_path / "d.npz", kind="npz"))[0].features_size == 2
    table[4, 1] = np.nan
    np.savez(tmp_path / "e.npz", table=table)
    with pytest.raises(DataError, match="row 5, column 2"):
        make_tasks(table_spec(tmp_path / "e.npz", kind="npz"))
