"""lamina: neural-network layers for the CPU with a packed AVX2/FMA GEMM, fused epilogues and OpenMP.

NumPy arrays in, NumPy arrays out. ``lamina.ops`` holds the native kernels and ``lamina.reference``
their plain-NumPy float64 mirror; the layers, ``Sequential``, losses and optimizers are thin Python
on top of ``ops``.
"""
from . import _native, ops, reference
from ._checks import check_int
from ._random import manual_seed
from .layers import (GELU, Activation, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AveragePooling1D, AveragePooling2D,
                     AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormalization, Conv1D, Conv1d, Conv2D, Conv2d, Dense, Dropout, Flatten,
                     GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                     LayerNorm, LayerNormalization, LeakyReLU, Linear, LogSoftmax, MaxPool1d, MaxPool2d, MaxPooling1D, MaxPooling2D, ReLU,
                     Sigmoid, Softmax, Tanh)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module
from .optim import SGD, Adam
from .parameter import Parameter
from .sequential import Input, Sequential
from .serialization import load, save
from .training import Callback, EarlyStopping, History, LambdaCallback
from . import keras, nn  # noqa: E402  (the dialects, built from everything above)

__version__ = _native.build_info()["version"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (>= 1) in native kernels; capped by OpenMP's limit (e.g. threadpoolctl)."""
    _native.set_num_threads(check_int(n, "set_num_threads: n", minimum=-(2**31)))  # 1.5 is a TypeError; 0 the native check's ValueError


def get_num_threads() -> int:
    """Threads the native kernels use now."""
    return _native.get_num_threads()


def build_info() -> dict:
    """Version, compiler, OpenMP, and the kernel path in use ("avx2" or "generic")."""
    return dict(_native.build_info())


__all__ = [
    "Activation", "Adam", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AveragePooling1D",
    "AveragePooling2D", "AvgPool1d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "BatchNormalization", "Callback", "Conv1D",
    "Conv1d", "Conv2D", "Conv2d", "CrossEntropyLoss", "Dense", "Dropout", "EarlyStopping",
    "Flatten", "GELU", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "History", "Input", "LambdaCallback", "LayerNorm", "LayerNormalization", "LeakyReLU", "Linear", "LogSoftmax",
    "MSELoss", "MaxPool1d", "MaxPool2d", "MaxPooling1D", "MaxPooling2D", "Module", "NLLLoss",
    "Parameter", "ReLU", "SGD", "Sequential", "Sigmoid", "Softmax", "Tanh", "build_info",
    "get_num_threads", "keras", "load", "manual_seed", "nn", "ops", "reference", "save",
    "set_num_threads",
]
