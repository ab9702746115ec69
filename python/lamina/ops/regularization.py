"""Dropout with a counter-based mask: element i of a call is kept when the top 32 bits of
hash(key, counter + i) reach p * 2**32 (see lamina.reference.regularization for the hash)."""
from .. import _native
from .._checks import check_dropout
from ._core import as_float

__all__ = ["dropout", "dropout_backward"]


def dropout(x, p, key, counter):
    r""":math:`y_i = x_i \, m_i / (1 - p)`, with :math:`m_i` the mask of element i (flat C order).

    Shape: any; the output has the shape of x.
    """
    check_dropout("dropout", p, key, counter)
    return _native.dropout(as_float("dropout", "x", x), float(p), int(key), int(counter))


def dropout_backward(dy, p, key, counter):
    r""":math:`dx_i = dy_i \, m_i / (1 - p)`, the mask recomputed from (key, counter)."""
    check_dropout("dropout_backward", p, key, counter)
    return _native.dropout_backward(as_float("dropout_backward", "dy", dy), float(p), int(key), int(counter))
