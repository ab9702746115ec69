"""Flatten: a view of the input with the axes start_dim..end_dim merged (no kernel, no copy for a
C-contiguous input)."""
import math

from .._checks import check_flatten_axes
from ._core import as_float

__all__ = ["flatten", "flatten_backward"]


def flatten(x, start_dim=1, end_dim=-1):
    r"""Merge the axes start_dim..end_dim of x into one, in row-major order (a view)."""
    x = as_float("flatten", "x", x)
    start, end = check_flatten_axes("flatten", x.ndim, start_dim, end_dim)
    return x.reshape(*x.shape[:start], math.prod(x.shape[start:end + 1]), *x.shape[end + 1:])


def flatten_backward(dy, input_shape):
    r"""Gradient of flatten: dy viewed in the input's shape."""
    return as_float("flatten_backward", "dy", dy).reshape(input_shape)
