"""The Keras dialect: `from lamina import keras` serves code written against `keras` / `tf.keras`.

Keras's names, argument conventions and defaults (`Dense(units, activation=...)`, `Dropout(rate)`,
optimizers built without parameters and taking `learning_rate`, `summary()` that prints), mapped
onto lamina's layers. Each new layer family adds its names to `lamina.keras.layers`.
"""
from .. import sequential as _sequential
from ..serialization import load as _load
from ..training import Callback, EarlyStopping, History, LambdaCallback
from . import layers, losses, optimizers

Input = _sequential.Input


class Sequential(_sequential.Sequential):
    """Keras's `Sequential`: lamina's container with Keras's `summary()`, which prints (through
    `print_fn` when given) and names rows by layer name."""

    def _summary_row_name(self, index, layer):
        return f"{layer.name} ({type(layer).__name__})"

    def summary(self, print_fn=print):
        return super().summary(print_fn=print_fn)


class callbacks:  # noqa: N801 (Keras's module name, as a namespace)
    Callback = Callback
    EarlyStopping = EarlyStopping
    History = History
    LambdaCallback = LambdaCallback


class models:  # noqa: N801
    Sequential = Sequential

    @staticmethod
    def load_model(path):
        """Keras's `load_model`: the model saved by `model.save(path)` / `lamina.save`."""
        return _load(path)


__all__ = ["Input", "Sequential", "callbacks", "layers", "losses", "models", "optimizers"]
