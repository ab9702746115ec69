"""Keras-style training for lamina models: `compile`, `fit`, `evaluate`, `predict`, `train_step`,
the metrics and the callbacks.

`Trainer` is the mixin a container inherits (as Keras's `Model` inherits its trainer): the methods
live here, and the layers know nothing of them.
"""
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .compile import compile
from .loop import evaluate, fit, predict, train_step
from .metrics import accuracy

__all__ = [
    "Callback", "EarlyStopping", "History", "LambdaCallback", "Trainer", "accuracy", "compile",
    "evaluate", "fit", "predict", "train_step",
]


class Trainer:
    """Keras's training methods for a model (a `Module` that holds its layers)."""

    def compile(self, optimizer=None, loss=None, metrics=None):
        """Attach an optimizer, a loss and metrics for `fit`/`evaluate` (see `lamina.training`)."""
        return compile(self, optimizer, loss, metrics)

    def fit(self, x, y=None, **kwargs):
        """Train on (x, y); keyword arguments as in Keras (epochs, batch_size, validation_data, ...)."""
        return fit(self, x, y, **kwargs)

    def evaluate(self, x, y=None, **kwargs):
        """Loss (and metrics) on (x, y), in inference mode, without updating the model."""
        return evaluate(self, x, y, **kwargs)

    def predict(self, x, batch_size=None, verbose=0):
        """Forward pass over x in batches, in inference mode; returns a NumPy array."""
        return predict(self, x, batch_size=batch_size)

    # One step on one batch: forward, loss, backward, optimizer update. Bound directly, without a
    # wrapper method: its frame was 2% of a small network's whole step.
    train_step = train_step
