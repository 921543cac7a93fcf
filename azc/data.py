"""Real-data task kinds: projected binary classification and the user's own tables.

Registered into azc.tasks.GENERATORS (make_tasks imports this module on first need):

- "digits", "cifar10", "mnist": projected binary classification, made the way the original's
  generate_datasets.py makes its files (reference §8.5–8.6), but on the fly:
    1. a pair of classes, given or drawn from the data seed avoiding held-out pairs;
       positive = the smaller class id, labelled 1; negative labelled 0;
    2. the first ceil((train + valid) / 2) examples of each class, raw pixel values;
    3. a stratified train_test_split(random_state=seed) into train and valid;
    4. a Gaussian projection to F features: a (D, F) standard-normal matrix from
       RandomState(seed), no scaling;
    5. StandardScaler fitted on the train split only, applied to both splits.
  digits are scikit-learn's bundled 8x8 digits (1797 images, 174–183 per class); cifar10 and
  mnist read files from the folder given as option "path" (see azc.readers).
- "csv", "npz": features plus a label column from the user's file; each data seed shuffles the
  rows and splits them into train and valid, optionally standardizing the features.

NOTE: the original maps data seeds onto a few pre-generated files (file seed = data seed mod
the supported range). azc projects on the fly, so the seed itself is the projection seed.
"""

import functools
import math
from pathlib import Path

import numpy as np

from azc import readers
from azc.errors import ConfigError, DataError
from azc.tasks import ACCURACY, Examples, TaskSpec, hash_mix, register

PROJECTED_KINDS = ("digits", "cifar10", "mnist")
TABLE_KINDS = ("csv", "npz")
NUM_CLASSES = 10
PAIR_SEED_SALT = 856572777  # the original's salt for picking a pair from a data seed

# What a projected task defaults to when the user does not say: the original's F = 16 and, for
# digits, about 2/3 train and 1/3 valid of the 2 x 174 images the smallest pair of classes has.
PROJECTED_DEFAULTS = {
    "digits": {"features": 16, "train": 230, "valid": 115},
    "cifar10": {"features": 16, "train": 8000, "valid": 1000},
    "mnist": {"features": 16, "train": 8000, "valid": 1000},
}


# --- class-labelled datasets ---------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _dataset(kind: str, folder: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw images (N, D) and class labels (N,) for a projected kind, read once per folder."""
    if kind == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data, digits.target.astype(np.int64)
    if folder is None:
        raise ConfigError(f"{kind} tasks need option 'path': the folder holding the data files")
    reader = readers.read_cifar10 if kind == "cifar10" else readers.read_mnist
    return reader(folder)


def class_pair(spec: TaskSpec, data_seed: int) -> tuple[int, int]:
    """(positive, negative): the classes given in the options, or a pair drawn from the seed."""
    held_out = {tuple(sorted(int(c) for c in pair))
                for pair in spec.options.get("held_out_pairs", ())}
    classes = spec.options.get("classes")
    if classes is not None:
        if len(classes) != 2 or len(set(classes)) != 2:
            raise ConfigError(f"{spec.kind} tasks: classes must be two different ids, "
                              f"not {list(classes)}")
        for label in classes:
            if not 0 <= int(label) < NUM_CLASSES:
                raise ConfigError(f"{spec.kind} tasks: class {label} is not in 0..9")
        low, high = sorted(int(c) for c in classes)
        return low, high

    pairs = [(i, j) for i in range(NUM_CLASSES) for j in range(i + 1, NUM_CLASSES)
             if (i, j) not in held_out]
    if not pairs:
        raise ConfigError(f"{spec.kind} tasks: every pair of classes is held out")
    # The original seeds an mt19937 with HashMix(salt, data seed), as RandomState does here;
    # its Abseil uniform draw is not reproduced, so the pairs differ from the original's.
    rng = np.random.RandomState(hash_mix(PAIR_SEED_SALT, data_seed))
    return pairs[rng.randint(len(pairs))]


def project_pair(images, labels, pair, F: int, n_train: int, n_valid: int, seed: int,
                 name: str = "data") -> Examples:
    """Steps 2–5 of generate_datasets.py for one class pair: balanced, split, projected, scaled."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    positive, negative = pair
    per_class = math.ceil((n_train + n_valid) / 2)
    chosen = []
    for label in (positive, negative):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise DataError(f"{name}: class {label} has {len(members)} examples, but "
                            f"{n_train} train + {n_valid} valid need {per_class} per class")
        chosen.append(members[:per_class])
    x = np.asarray(images[np.concatenate(chosen)], dtype=np.float64)
    y = np.repeat([1.0, 0.0], per_class)

    seed = seed % 2**32
    train_x, valid_x, train_y, valid_y = train_test_split(
        x, y, train_size=n_train, test_size=n_valid, stratify=y, random_state=seed)
    projection = np.random.RandomState(seed).standard_normal((x.shape[1], F))
    scaler = StandardScaler().fit(train_x @ projection)
    return Examples(scaler.transform(train_x @ projection), train_y,
                    scaler.transform(valid_x @ projection), valid_y,
                    name=f"{name} {positive}v{negative} seed {seed}")


def projected_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """One projected binary classification task; param_seed is unused, as in the original."""
    if spec.eval_type != ACCURACY:
        raise ConfigError(f"{spec.kind} tasks are classification: eval_type must be accuracy")
    path = spec.options.get("path")
    images, labels = _dataset(spec.kind, None if path is None else str(Path(path).resolve()))
    pair = class_pair(spec, data_seed)
    return project_pair(images, labels, pair, spec.features_size, spec.num_train_examples,
                        spec.num_valid_examples, data_seed, name=spec.kind)


for _kind in PROJECTED_KINDS:
    register(_kind)(projected_examples)


# --- the user's own tables -----------------------------------------------------------------------


def _label_index(names: list[str] | None, width: int, label_column, path) -> int:
    if label_column is None:
        return width - 1
    if isinstance(label_column, str):
        if names is None:
            raise DataError(f"{path}: label column {label_column!r} named, but no header row")
        if label_column not in names:
            raise DataError(f"{path}: no column {label_column!r}; columns: {', '.join(names)}")
        return names.index(label_column)
    index = int(label_column)
    if not -width <= index < width:
        raise DataError(f"{path}: label column {index} is out of range for {width} columns")
    return index % width


@functools.lru_cache(maxsize=8)
def _table(kind: str, path: str, mtime: float, label_column, header) -> tuple[np.ndarray, ...]:
    """(features, labels) of a user file, cached while the file is unchanged."""
    if kind == "csv":
        names, values = readers.read_csv(path, header)
    else:
        arrays = readers.read_npz(path)
        features_key = next((k for k in readers.NPZ_FEATURE_KEYS if k in arrays), None)
        labels_key = next((k for k in readers.NPZ_LABEL_KEYS if k in arrays), None)
        if features_key and labels_key:
            features = np.asarray(arrays[features_key], dtype=np.float64)
            labels = np.asarray(arrays[labels_key], dtype=np.float64).reshape(-1)
            if features.ndim != 2 or len(features) != len(labels):
                raise DataError(f"{path}: '{features_key}' must be (rows, features) and "
                                f"'{labels_key}' one label per row; got shapes "
                                f"{features.shape} and {labels.shape}")
            readers.check_finite(path, features, f"'{features_key}'")
            readers.check_finite(path, labels, f"'{labels_key}'")
            return features, labels
        if len(arrays) != 1:
            raise DataError(f"{path}: expected arrays 'features' and 'labels' (or 'x' and 'y'), "
                            f"or one 2-D array; found {', '.join(arrays) or 'none'}")
        names, values = None, np.asarray(next(iter(arrays.values())), dtype=np.float64)
        if values.ndim != 2:
            raise DataError(f"{path}: the array must be 2-D (rows, columns), not {values.shape}")
        readers.check_finite(path, values)

    if values.shape[1] < 2:
        raise DataError(f"{path}: need at least one feature column and a label column")
    label = _label_index(names, values.shape[1], label_column, path)
    return np.delete(values, label, axis=1), values[:, label]


def read_table(spec_kind: str, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of the file a csv or npz task names in its options."""
    path = options.get("path")
    if path is None:
        raise ConfigError(f"{spec_kind} tasks need option 'path': the data file")
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise DataError(f"{path}: no such file") from None
    return _table(spec_kind, str(path.resolve()), mtime, options.get("label_column"),
                  options.get("header"))


def split_counts(rows: int, train: float, valid: float) -> tuple[int, int]:
    """Train and valid counts from counts (>= 1) or fractions of the rows (< 1)."""
    def count(value):
        return int(value) if value >= 1 else int(round(value * rows))

    return count(train), count(valid)


def table_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """One task from the user's file: rows shuffled by the data seed, then train, then valid."""
    features, labels = read_table(spec.kind, spec.options)
    path = spec.options["path"]
    if features.shape[1] != spec.features_size:
        raise DataError(f"{path}: the file has {features.shape[1]} feature columns, but the "
                        f"task asks for {spec.features_size} features")
    n_train, n_valid = spec.num_train_examples, spec.num_valid_examples
    if n_train + n_valid > len(labels):
        raise DataError(f"{path}: the file has {len(labels)} rows, too few for {n_train} train "
                        f"+ {n_valid} valid examples")
    if spec.eval_type == ACCURACY and not np.isin(labels, (0.0, 1.0)).all():
        row = int(np.flatnonzero(~np.isin(labels, (0.0, 1.0)))[0]) + 1
        raise DataError(f"{path}: accuracy tasks need labels 0 or 1; data row {row} has "
                        f"{labels[row - 1]:g}")

    order = np.random.RandomState(data_seed % 2**32).permutation(len(labels))
    train, valid = order[:n_train], order[n_train:n_train + n_valid]
    train_x, valid_x = features[train], features[valid]
    if spec.options.get("standardize", True):
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(train_x)
        train_x, valid_x = scaler.transform(train_x), scaler.transform(valid_x)
    return Examples(train_x, labels[train], valid_x, labels[valid],
                    name=f"{Path(path).name} seed {data_seed}")


for _kind in TABLE_KINDS:
    register(_kind)(table_examples)
