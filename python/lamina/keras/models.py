"""`keras.models`: `Sequential` and `load_model`."""
from ..serialization import load
from .sequential import Sequential

__all__ = ["Sequential", "load_model"]


def load_model(path):
    """Keras's `load_model`: the model saved by `lamina.save(model, path)` (architecture and
    weights; `lamina.load(path, with_optimizer=True)` also restores a saved optimizer)."""
    return load(path)
