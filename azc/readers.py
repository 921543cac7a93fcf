"""Readers for data files on disk: CIFAR-10 python batches, MNIST IDX files, CSV and NPZ tables.

Each reader returns plain NumPy arrays and raises DataError, naming the file, for anything it
cannot use. Nothing is downloaded: the user points azc at files they already have.
"""

import csv
import gzip
import io
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np

from azc.errors import DataError

# --- CIFAR-10 ------------------------------------------------------------------------------------

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

# The only globals a CIFAR-10 batch (a pickled dict holding a uint8 array) needs to rebuild.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 pickles of arrays
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds dicts, lists, strings and NumPy arrays, and nothing else."""

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _open_batch(path: Path) -> dict:
    try:
        with path.open("rb") as stream:
            # encoding="bytes": the official batches were pickled by Python 2.
            batch = _ArrayUnpickler(stream, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected the CIFAR-10 python batches)") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"{path}: not a CIFAR-10 python batch: {error}") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (no dict inside)")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def read_cifar10(folder: str | Path, batches=CIFAR10_TRAIN_BATCHES) -> tuple[np.ndarray, ...]:
    """Images (N, 3072) uint8 and labels (N,) int64 from CIFAR-10 python-version batches."""
    images, labels = [], []
    for name in batches:
        path = Path(folder) / name
        batch = _open_batch(path)
        data, batch_labels = batch.get("data"), batch.get("labels")
        if not isinstance(data, np.ndarray) or data.ndim != 2 or batch_labels is None:
            raise DataError(f"{path}: a CIFAR-10 batch needs a 2-D 'data' array and 'labels'")
        if len(batch_labels) != len(data):
            raise DataError(f"{path}: {len(data)} images but {len(batch_labels)} labels")
        images.append(data)
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


# --- MNIST (IDX) ---------------------------------------------------------------------------------

MNIST_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (as MNIST ships them), gzipped or not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: broken gzip data: {error}") from None

    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(size) for size in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header promises {expected} bytes, file has {len(raw)}")
    return np.frombuffer(raw[header:], dtype=dtype).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    """An MNIST file by its standard name, also as .gz or with the dot spelling (idx3.ubyte)."""
    for name in (stem, stem.replace("-idx", ".idx").replace("-ubyte", ".ubyte")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    raise DataError(f"{folder}: no {stem} file (or {stem}.gz) for MNIST")


def read_mnist(folder: str | Path, files=MNIST_TRAIN) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) uint8 and labels (N,) int64 from MNIST's IDX files in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (expected MNIST's IDX files)")
    images, labels = (read_idx(_find(folder, stem)) for stem in files)
    if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: MNIST images {images.shape} and labels {labels.shape} differ")
    return images.reshape(len(images), -1), labels.astype(np.int64)


# --- user tables: CSV and NPZ --------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: str | Path, header: bool | None = None) -> tuple[list[str] | None, np.ndarray]:
    """Column names (None without a header row) and the float64 rows of a CSV file.

    With header=None the first row is a header if any of its cells is not a number. Ragged rows,
    text and NaN in the data are errors naming the row (the file's line) and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None

    try:
        rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), 1)
                if row and any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise DataError(f"{path}: malformed CSV: {error}") from None
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    if header is None:
        header = not all(_is_number(cell) for cell in rows[0][1])
    names = [cell.strip() for cell in rows[0][1]] if header else None
    body = rows[1:] if header else rows

    width = len(rows[0][1])
    values = np.empty((len(body), width))
    for i, (line, row) in enumerate(body):
        if len(row) != width:
            raise DataError(f"{path}:{line}: row has {len(row)} fields, expected {width}")
        for column, cell in enumerate(row):
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"{path}:{line}: column {column + 1}: {cell.strip()!r} "
                                "is not a number") from None
            if not math.isfinite(value):
                raise DataError(f"{path}:{line}: column {column + 1}: {cell.strip()!r} "
                                "is not a finite number")
            values[i, column] = value
    return names, values


NPZ_FEATURE_KEYS = ("features", "x", "X")
NPZ_LABEL_KEYS = ("labels", "y", "Y")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (never unpickling object arrays)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    # NOTE: np.load takes any other file for a pickle and advises allow_pickle: say what it is.
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a valid .npz file (an .npz is a zip archive of arrays, "
                        "as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{path}: holds object arrays; azc reads only numeric arrays "
                            "(it never unpickles)") from None
        raise DataError(f"{path}: not a valid .npz file: {error}") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file: {error}") from None


def check_finite(path, values: np.ndarray, what: str = "data"):
    """DataError naming the first non-finite entry's row and column (both from 1)."""
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = (int(i) + 1 for i in (tuple(bad[0]) + (0,))[:2])
        raise DataError(f"{path}: {what} row {row}, column {column}: "
                        f"{values[tuple(bad[0])]} is not a finite number")
