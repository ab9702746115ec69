"""What every reference op shares: inputs as float64 arrays (checked as lamina.ops checks them),
and the scalar activation formulas that both the activations and the GEMM epilogue apply.
"""
import math

import numpy as np

from .._checks import as_array


def as_f64(op, name, x):
    return as_array(op, name, x).astype(np.float64, copy=False)


def apply_activation(z, activation, negative_slope=0.01):
    """An elementwise activation by name (None: z itself), as the kernels' epilogues apply it."""
    if activation is None:
        return z
    if activation == "relu":
        return relu_formula(z)
    if activation == "sigmoid":
        return sigmoid_formula(z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "leaky_relu":
        return np.where(z > 0, z, negative_slope * z)
    if activation == "gelu":
        return z * normal_cdf(z)
    if activation == "gelu_tanh":
        return z * sigmoid_formula(2.0 * gelu_tanh_inner(z))
    raise ValueError(f"unknown activation {activation!r}")


def relu_formula(z):
    return np.maximum(z, 0.0)


def sigmoid_formula(z):
    # exp(-|z|) never overflows; the two branches are the same function for z >= 0 and z < 0.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def normal_cdf(x):
    # erfc keeps the tail: 1 + erf(x / sqrt 2) would cancel for x << 0.
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def gelu_tanh_inner(x):
    """u of GELU's tanh form, x (1 + tanh u) / 2 = x sigmoid(2u)."""
    return SQRT_2_OVER_PI * (x + 0.044715 * x**3)
