"""Dense (fully connected) layer kernels: linear forward with a fused epilogue, and its backward."""
from typing import Optional

import numpy as np
import numpy.typing as npt

from .. import _native
from .._checks import check_activation, check_ndim, check_shape
from ._core import Array, as_float, inplace

__all__ = ['linear', 'linear_backward']


def linear(x: npt.ArrayLike, W: npt.ArrayLike, b: Optional[npt.ArrayLike] = None,
           activation: Optional[str] = None) -> Array:
    r"""Fully connected layer with a fused epilogue: :math:`y = \mathrm{act}(x W^T + b)`.

    Args:
        x: input batch (integers are cast to W's dtype).
        W: weight, one row per output feature.
        b: bias or None.
        activation: None, "relu", "sigmoid" or "tanh", applied in the GEMM's write-back.

    Shape: x :math:`(B, in)`, W :math:`(out, in)`, b :math:`(out,)` -> :math:`(B, out)`.
    """
    op = "linear"
    check_activation(op, activation)
    W = as_float(op, "W", W)
    x = as_float(op, "x", x, W.dtype)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"linear: W has shape {W.shape}, expected (out_features, {x.shape[1]}) to match x of shape {x.shape}"
        )
    if b is not None:
        b = as_float(op, "b", b, W.dtype)
        check_shape(op, "b", b, (W.shape[0],), "(out_features,)")
    return _native.linear(x, W, b, activation)


def linear_backward(dy, x, W, dW=None, db=None, need_dx=True):
    r"""Gradients of :math:`y = x W^T + b`: :math:`dx = dy W`, :math:`dW \mathrel{+}= dy^T x`,
    :math:`db \mathrel{+}= \sum_{batch} dy` (each column summed in row order).

    Args:
        dy: gradient with respect to the pre-activation output.
        x, W: the layer's input and weight.
        dW: None for a fresh array, or an array accumulated into in place.
        db: None for a fresh array, an array accumulated into in place, or False to skip it.
        need_dx: when False, dx is not computed (first layer) and returned as None.

    Shape: dy :math:`(B, out)`, x :math:`(B, in)`, W :math:`(out, in)`.
    Returns (dx, dW, db).
    """
    op = "linear_backward"
    W = as_float(op, "W", W)
    x = as_float(op, "x", x, W.dtype)
    dy = as_float(op, "dy", dy, W.dtype)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    batch, n_in = x.shape
    n_out = W.shape[0]
    check_shape(op, "W", W, (n_out, n_in), f"to match x of shape {x.shape}")
    check_shape(op, "dy", dy, (batch, n_out), f"(batch, out_features) for x of shape {x.shape} and W of shape {W.shape}")
    dW = np.zeros_like(W) if dW is None else inplace(op, "dW", dW, W.shape, W.dtype)
    if db is False:
        db = None
    elif db is None:
        db = np.zeros(n_out, dtype=W.dtype)
    else:
        inplace(op, "db", db, (n_out,), W.dtype)
    dx = _native.linear_backward(dy, x, W, dW, db, bool(need_dx))
    return dx, dW, db


