"""What every reference op shares: inputs as float64 arrays (checked as lamina.ops checks them),
and the scalar activation formulas that both the activations and the GEMM epilogue apply.
"""
import numpy as np

from .._checks import as_array


def as_f64(op, name, x):
    return as_array(op, name, x).astype(np.float64, copy=False)


def apply_activation(z, activation):
    if activation is None:
        return z
    if activation == "relu":
        return relu_formula(z)
    if activation == "sigmoid":
        return sigmoid_formula(z)
    return np.tanh(z)


def relu_formula(z):
    return np.maximum(z, 0.0)


def sigmoid_formula(z):
    # exp(-|z|) never overflows; the two branches are the same function for z >= 0 and z < 0.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
