"""Flatten in NumPy: the axes start_dim..end_dim merged into one, in row-major (C) order."""
import math

from .._checks import check_flatten_axes
from ._core import as_f64

__all__ = ["flatten", "flatten_backward"]


def flatten(x, start_dim=1, end_dim=-1):
    r"""Merge the axes start_dim..end_dim (negative from the end) of x into one.

    Shape: :math:`(d_0, \dots, d_{n-1}) \to (d_0, \dots, d_{s-1}, \prod_{i=s}^{e} d_i, d_{e+1}, \dots)`.

    Example::

        >>> flatten(np.zeros((2, 3, 4))).shape
        (2, 12)
    """
    x = as_f64("flatten", "x", x)
    start, end = check_flatten_axes("flatten", x.ndim, start_dim, end_dim)
    return x.reshape(*x.shape[:start], math.prod(x.shape[start:end + 1]), *x.shape[end + 1:])


def flatten_backward(dy, input_shape):
    r"""Gradient of flatten: dy put back in the input's shape (the same values, row-major)."""
    return as_f64("flatten_backward", "dy", dy).reshape(input_shape)
