"""lamina: neural-network layers for the CPU: a packed GEMM with AVX-512 and AVX2/FMA micro-kernels
chosen at run time (per CPU model), fused epilogues and OpenMP.

NumPy arrays in, NumPy arrays out. ``lamina.ops`` holds the native kernels and ``lamina.reference``
their plain-NumPy float64 mirror; the layers, ``Sequential``, losses and optimizers are thin Python
on top of ``ops``.
"""
import os
import warnings
from typing import Any

from . import _native
from ._checks import check_int, check_isa_request

# LAMINA_ISA was read when the native module loaded; refuse a name it does not know before anything
# runs on a path nobody asked for, and say so when the CPU cannot run the one asked for.
_isa_warning = check_isa_request(os.environ.get("LAMINA_ISA"), _native.build_info()["isa_supported"],
                                 _native.isa())
if _isa_warning:
    warnings.warn(_isa_warning, RuntimeWarning)

from . import ops, reference  # noqa: E402
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


def build_info() -> dict[str, Any]:
    """Version, compiler, OpenMP, the CPU (vendor, family, model, name), the kernel paths it could run
    (``isa_supported``, widest first: "avx512", "avx2", "generic"), the one in use (``isa``) and why
    it was chosen (``isa_choice``), and the thread count."""
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
