"""The PyTorch dialect: `import lamina.nn as nn` serves code written against `torch.nn`.

PyTorch's names, argument conventions and defaults for every layer family that has landed (each
new family adds its names here), mapped onto lamina's layers; `lamina.optim` serves `torch.optim`.
"""
from ..layers import (GELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout,
                      Flatten, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool1d, MaxPool2d, ReLU, Sigmoid, Softmax, Tanh)
from ..losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from ..module import Module
from ..parameter import Parameter
from ..sequential import Sequential

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "Conv1d", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "GELU", "LayerNorm", "LeakyReLU", "Linear",
    "LogSoftmax", "MSELoss", "MaxPool1d", "MaxPool2d", "Module", "NLLLoss", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "Tanh",
]
