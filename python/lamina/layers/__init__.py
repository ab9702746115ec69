"""Layers, one module per family: dense (Linear, Dense), activations, conv (Conv1d/2d, Conv1D/2D),
pooling (max, average, adaptive, global), normalization (batch and layer norm), regularization (Dropout), reshaping (Flatten). Each registers itself in `_registry` so that saved models can be rebuilt.
"""
from .activations import GELU, Activation, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv1D, Conv1d, Conv2D, Conv2d
from .dense import Dense, Linear
from .normalization import BatchNorm1d, BatchNorm2d, BatchNormalization, LayerNorm, LayerNormalization
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AveragePooling1D, AveragePooling2D, AvgPool1d, AvgPool2d, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1d, MaxPool2d, MaxPooling1D, MaxPooling2D)
from .regularization import Dropout
from .reshaping import Flatten

__all__ = ["Activation", "BatchNorm1d", "BatchNorm2d", "BatchNormalization", "LayerNorm", "LayerNormalization", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AveragePooling1D", "AveragePooling2D", "AvgPool1d", "AvgPool2d", "Conv1D", "Conv1d", "Conv2D", "Conv2d", "Dense", "Dropout", "Flatten", "GELU", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "LeakyReLU", "Linear", "LogSoftmax", "MaxPool1d", "MaxPool2d", "MaxPooling1D", "MaxPooling2D", "ReLU", "Sigmoid", "Softmax", "Tanh"]
