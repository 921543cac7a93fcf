"""azc: evolve machine-learning algorithms from scratch, as in AutoML-Zero, with a compiler."""

import logging

logging.getLogger("azc").addHandler(logging.NullHandler())

__version__ = "0.1.0"
