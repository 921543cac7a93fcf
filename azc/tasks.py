"""Tasks: the datasets an algorithm learns from, and the fitness it earns on them.

A Task holds its examples as float64 arrays; every engine reads the same arrays.
"""

from dataclasses import dataclass, field

import numpy as np

RMS, ACCURACY = "rms", "accuracy"


@dataclass(frozen=True, eq=False)
class Task:
    """One task: train and validation examples, how to score, and the epoch orders.

    `epoch_orders[e]` lists the training example indices in the order epoch e visits them;
    epoch 0 is the stored order, later epochs are shuffles fixed when the task is made.
    """

    name: str
    train_features: np.ndarray  # (n_train, F)
    train_labels: np.ndarray  # (n_train,)
    valid_features: np.ndarray  # (n_valid, F)
    valid_labels: np.ndarray  # (n_valid,)
    eval_type: str = RMS
    epoch_orders: np.ndarray = field(default=None)  # (epochs, n_train) int64

    def __post_init__(self):
        if self.epoch_orders is None:
            order = np.arange(len(self.train_labels))[None, :]
            object.__setattr__(self, "epoch_orders", order)

    @property
    def features_size(self) -> int:
        return self.train_features.shape[1]

    @property
    def num_train_epochs(self) -> int:
        return self.epoch_orders.shape[0]

    @property
    def max_train_examples(self) -> int:
        """All training steps the task allows: examples per epoch times epochs."""
        return self.epoch_orders.size
