"""The runtime of an exported algorithm: copied verbatim into every `azc export --to numpy` module.

It needs only NumPy and the standard library, and reproduces azc's own semantics exactly, so an
exported algorithm scores what azc scores: sums run one term at a time from the first (as
azc/ops.py's sequential_sum), transcendentals are the C library's (Python's math module calls
them, and the IEEE results it refuses to return are given here), and random ops draw from azc's
program stream (azc/rng.py). The training helpers follow azc's executor (azc/reference.py).

Everything below the marker line is copied into the exported module, after its Algorithm
class, which `fitness` instantiates.
"""

import math

import numpy as np

# --- exported from here ---------------------------------------------------------------------

# --- training and scoring, as azc's executor (azc/reference.py) -----------------------------


def fit(model, features, labels, epochs=1, *, classifier=False, max_abs_error=100.0,
        orders=None) -> bool:
    """Train on examples, one at a time: Predict, then Learn; False if training stopped early.

    Epoch e visits the examples in the order `orders[e]` (default: as given). With `classifier`
    (azc's accuracy tasks, labels 0 and 1) s1 becomes sigmoid(s1) before Learn sees it. As in
    azc, training stops when |label - s1| is NaN or above `max_abs_error`.
    """
    features, labels = _examples(features, labels, model.F)
    if orders is None:
        orders = [range(len(labels))] * epochs
    return all(train_epoch(model, features, labels, order, classifier, max_abs_error)
               for order in orders)


def train_epoch(model, features, labels, order, classifier=False, max_abs_error=100.0) -> bool:
    """One epoch of Predict + Learn over the examples in `order`; False on an early stop."""
    for i in order:
        model.predict(features[i])
        if classifier:
            model.s1 = sigmoid(model.s1)
        error = abs(labels[i] - model.s1)
        if not error <= max_abs_error:  # NaN fails every comparison
            return False
        model.learn(features[i], labels[i])
    return True


def predict(model, features) -> np.ndarray:
    """Predict only (no learning) on each row of `features`: the s1 values, logits if a classifier.

    NOTE: Predict may write memory, so predictions can depend on earlier ones, as in azc.
    """
    features = _matrix(features, model.F)
    return np.array([model.predict(x) for x in features], dtype=np.float64)


def fitness(train_features, train_labels, valid_features, valid_labels, *, eval_type="rms",
            epoch_orders=None, num_train=None, num_valid=None, max_abs_error=100.0, seed=0,
            task_index=0) -> float:
    """azc's fitness of this algorithm on one task, in [0, 1] (azc.reference.run_task).

        model = Algorithm(F, seed, task_index)          # zeroed memory, then Setup
        for each epoch (a chunk of the first num_train steps of epoch_orders):
            train_epoch(model, ...)                     # early stop: 0 in epoch 1, else stop
            best = max(best, validation fitness)        # Predict only, first num_valid examples
        return best

    The validation fitness is 1 - (2/pi) atan(RMS error) for eval_type "rms" and the accuracy
    of sigmoid(s1) > 0.5 for "accuracy"; both average over all validation examples given.
    """
    train_features, train_labels = _examples(train_features, train_labels, None)
    valid_features, valid_labels = _examples(valid_features, valid_labels,
                                             train_features.shape[1])
    if eval_type not in ("rms", "accuracy"):
        raise ValueError(f"eval_type must be 'rms' or 'accuracy', not {eval_type!r}")
    if epoch_orders is None:
        epoch_orders = np.arange(len(train_labels))[None, :]
    epoch_orders = np.asarray(epoch_orders)
    steps = epoch_orders.reshape(-1)[:num_train]
    epoch_size = epoch_orders.shape[1]
    num_valid = len(valid_labels) if num_valid is None else min(num_valid, len(valid_labels))
    classifier = eval_type == "accuracy"

    model = Algorithm(train_features.shape[1], seed, task_index)  # noqa: F821 (the export)
    best = 0.0
    for start in range(0, len(steps), epoch_size):
        order = steps[start:start + epoch_size]
        if not train_epoch(model, train_features, train_labels, order, classifier,
                           max_abs_error):
            if start == 0:
                return 0.0
            break
        best = max(best, _validation_fitness(model, valid_features, valid_labels, num_valid,
                                             classifier, max_abs_error))
    return best


def _validation_fitness(model, features, labels, num_valid, classifier, max_abs_error):
    loss = 0.0
    for i in range(num_valid):
        prediction = model.predict(features[i])
        if classifier:
            error = 0.0 if (labels[i] > 0.5) == (sigmoid(prediction) > 0.5) else 1.0
            loss += error
        else:
            error = labels[i] - prediction
            loss += error * error
        if not abs(error) <= max_abs_error:
            return 0.0

    # NOTE: azc averages over every validation example given, not just the num_valid run.
    if classifier:
        return 1.0 - loss / len(labels)
    rms = math.sqrt(float(loss) / len(labels))
    return 1.0 - (2.0 / math.pi) * math.atan(rms) if math.isfinite(rms) else 0.0


def _examples(features, labels, F):
    features = _matrix(features, F)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.shape != (len(features),):
        raise ValueError(f"expected {len(features)} labels, one per example, "
                         f"not an array of shape {labels.shape}")
    return features, labels


def _matrix(features, F):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or (F is not None and features.shape[1] != F):
        raise ValueError(f"expected examples as rows of {F or 'F'} features, "
                         f"not an array of shape {features.shape}")
    return features


# --- what the ops need: azc's exact semantics (azc/ops.py) ----------------------------------


def vector(features, F):
    """The features as a fresh float64 vector v0 of length F."""
    v0 = np.array(features, dtype=np.float64)
    if v0.shape != (F,):
        raise ValueError(f"expected {F} features, not an array of shape {v0.shape}")
    return v0


def ordered_sum(x, axis=None):
    """Sum from the first term on, one addition at a time (row-major when axis is None)."""
    if axis is None:
        return np.cumsum(np.ravel(x))[-1]
    return np.take(np.cumsum(x, axis=axis), -1, axis=axis)


def std(x, axis=None):
    """Standard deviation as sqrt(E[x^2] - E[x]^2), over all entries or along an axis."""
    n = x.size if axis is None else x.shape[axis]
    mean = ordered_sum(x, axis) / n
    return np.sqrt(ordered_sum(x * x, axis) / n - mean * mean)


def index(fraction, F):
    """The position a fraction in [0, 1) names in a vector of F, in float32 as azc computes it."""
    return int(np.float32(fraction) * np.float32(F))


def _libm(function):
    """The C library's function through math, with the IEEE values math raises on instead."""

    def call(x):
        try:
            return np.float64(function(x))
        except OverflowError:  # only exp overflows
            return np.float64(math.inf)
        except ValueError:  # sin(inf), arcsin(2), log(-1): not a number
            return np.float64(math.nan)

    return call


sin, cos, tan = _libm(math.sin), _libm(math.cos), _libm(math.tan)
arcsin, arccos, arctan = _libm(math.asin), _libm(math.acos), _libm(math.atan)
exp = _libm(math.exp)
_log = _libm(math.log)


def log(x):
    """Natural log: -inf at zero (where math raises), NaN below."""
    return np.float64(-math.inf) if x == 0 else _log(x)


def sigmoid(x):
    """1 / (1 + e^-x), as azc squashes a classifier's s1."""
    return 1.0 / (1.0 + exp(-x))


class Stream:
    """azc's program random stream (azc/rng.py): splitmix64, one stream per (seed, task index).

    uniform(low, high) = low + (high - low) u and gaussian(mean, sd) by Box-Muller, with u on
    the open (0, 1); arrays draw in row-major order; uniform with low >= high gives low without
    drawing.
    """

    MASK = (1 << 64) - 1

    def __init__(self, seed=0, task_index=0):
        self.state = (seed + task_index * 0x632BE59BD9B4E019) & self.MASK

    def unit(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        z ^= z >> 31
        return ((z >> 12) + 0.5) * 2.0**-52

    def uniform(self, low, high, shape=()):
        if not low < high:
            return np.full(shape, low) if shape else np.float64(low)
        return self._draws(lambda: low + (high - low) * self.unit(), shape)

    def gaussian(self, mean, sd, shape=()):
        def draw():
            u1, u2 = self.unit(), self.unit()
            return mean + sd * (math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))

        return self._draws(draw, shape)

    @staticmethod
    def _draws(draw, shape):
        if not shape:
            return np.float64(draw())
        return np.array([draw() for _ in range(math.prod(shape))]).reshape(shape)
