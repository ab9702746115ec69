"""The Keras dialect: `from lamina import keras` serves code written against `keras` / `tf.keras`.

Keras's names, argument conventions and defaults (`Dense(units, activation=...)`, `Dropout(rate)`,
optimizers built without parameters and taking `learning_rate`, `summary()` that prints), mapped
onto lamina's layers. Each new layer family adds its names to `lamina.keras.layers`.
"""
from . import callbacks, layers, losses, models, optimizers, utils
from .sequential import Input, Sequential

__all__ = ["Input", "Sequential", "callbacks", "layers", "losses", "models", "optimizers", "utils"]
