"""Layers, one module per family: dense (Linear, Dense), activations, regularization (Dropout),
reshaping (Flatten). Each registers itself in `_registry` so that saved models can be rebuilt.
"""
from .activations import GELU, Activation, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .dense import Dense, Linear
from .regularization import Dropout
from .reshaping import Flatten

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "GELU", "LeakyReLU", "Linear", "LogSoftmax",
           "ReLU", "Sigmoid", "Softmax", "Tanh"]
