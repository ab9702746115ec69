"""`keras.layers`: Keras's layer names and arguments on lamina's layers."""
from .. import _registry
from ..layers import (Activation, AveragePooling1D, AveragePooling2D, BatchNormalization, Conv1D, Conv2D, Dense, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, LayerNormalization, MaxPooling1D, MaxPooling2D)
from ..layers import Dropout as _Dropout
from ..layers import Flatten as _Flatten
from ..layers import LeakyReLU as _LeakyReLU
from ..layers import Softmax as _Softmax
from .sequential import Input


class Dropout(_Dropout):
    """Keras's `Dropout(rate)`: zeroes a fraction `rate` of the inputs in training, scaling the
    rest by 1 / (1 - rate); identity in inference."""

    _CONFIG_KEYS = ("rate",)

    def __init__(self, rate, noise_shape=None, seed=None, name=None):
        if noise_shape is not None or seed is not None:
            raise ValueError("Dropout: noise_shape and seed are not supported; seed with lm.manual_seed")
        super().__init__(rate, name=name)

    @property
    def rate(self):
        return self.p

    def get_config(self):
        return self._with_name({"class": "keras.Dropout", "rate": self.p})


class Flatten(_Flatten):
    """Keras's `Flatten()`: every axis but the batch axis, in the order the data is laid out
    (H, W, C for channels_last images)."""

    _CONFIG_KEYS = ()

    def __init__(self, data_format=None, name=None):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten: data_format={data_format!r} is not supported yet "
                             f"(channels_last data flattens as it is laid out)")
        super().__init__(1, -1, name=name)

    def get_config(self):
        return self._with_name({"class": "keras.Flatten"})


class LeakyReLU(_LeakyReLU):
    """Keras's `LeakyReLU(negative_slope=0.3)`."""

    def __init__(self, negative_slope=0.3, name=None):
        super().__init__(negative_slope, name=name)

    def get_config(self):
        return self._with_name({"class": "keras.LeakyReLU", "negative_slope": self.negative_slope})


class Softmax(_Softmax):
    """Keras's `Softmax(axis=-1)`."""

    _CONFIG_KEYS = ("axis",)

    def __init__(self, axis=-1, name=None):
        super().__init__(axis, name=name)

    def get_config(self):
        return self._with_name({"class": "keras.Softmax", "axis": self.dim})


for _cls in (Dropout, Flatten, LeakyReLU, Softmax):
    _registry.register(_cls, name="keras." + _cls.__name__)

# Keras's shorter aliases.
AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D = AveragePooling1D, AveragePooling2D, MaxPooling1D, MaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D

__all__ = [
    "Activation", "AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D", "BatchNormalization", "Conv1D",
    "Conv2D", "Dense", "Dropout", "Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Input", "LayerNormalization", "LeakyReLU", "MaxPool1D", "MaxPool2D",
    "MaxPooling1D", "MaxPooling2D", "Softmax",
]
