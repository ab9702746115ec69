"""Activations: forward from x, backward from the saved output y."""
import math
from typing import Optional

import numpy.typing as npt


from .. import _native
from .._checks import ACTIVATION_KINDS, ROW_ACTIVATIONS, check_gelu_form, check_ndim, check_number, check_shape
from ._core import Array, as_float

__all__ = ['relu', 'relu_backward', 'sigmoid', 'sigmoid_backward', 'tanh', 'tanh_backward', 'softmax', 'softmax_backward', 'leaky_relu', 'leaky_relu_backward', 'gelu', 'gelu_backward', 'log_softmax', 'log_softmax_backward']


def _activation(kind: str, x: npt.ArrayLike, op: Optional[str] = None, negative_slope: float = 0.01) -> Array:
    op = op or kind
    x = as_float(op, "x", x)
    if kind in ROW_ACTIVATIONS:
        check_ndim(op, "x", x, 2, "(batch, classes)")
    if kind == "leaky_relu":
        return _native.activation(x, kind, negative_slope)
    return _native.activation(x, kind)


def _activation_backward(kind: str, dy: npt.ArrayLike, saved: npt.ArrayLike, saved_name: str = "y", op: Optional[str] = None,
                         negative_slope: float = 0.01) -> Array:
    op = op or kind + "_backward"
    saved = as_float(op, saved_name, saved)
    dy = as_float(op, "dy", dy, saved.dtype)
    check_shape(op, "dy", dy, saved.shape, f"(the shape of {saved_name})")
    if kind in ROW_ACTIVATIONS:
        check_ndim(op, saved_name, saved, 2, "(batch, classes)")
    if kind == "leaky_relu":
        return _native.activation_backward(dy, saved, kind, negative_slope)
    return _native.activation_backward(dy, saved, kind)


def relu(x: npt.ArrayLike) -> Array:
    r""":math:`y = \max(x, 0)`, elementwise (NaN propagates)."""
    return _activation("relu", x)


def relu_backward(dy: npt.ArrayLike, y: npt.ArrayLike) -> Array:
    r""":math:`dx = dy \cdot [y > 0]`."""
    return _activation_backward("relu", dy, y)


def sigmoid(x: npt.ArrayLike) -> Array:
    r""":math:`y = 1 / (1 + e^{-x})`, elementwise."""
    return _activation("sigmoid", x)


def sigmoid_backward(dy: npt.ArrayLike, y: npt.ArrayLike) -> Array:
    r""":math:`dx = dy \cdot y (1 - y)`."""
    return _activation_backward("sigmoid", dy, y)


def tanh(x: npt.ArrayLike) -> Array:
    r""":math:`y = \tanh x`, elementwise."""
    return _activation("tanh", x)


def tanh_backward(dy: npt.ArrayLike, y: npt.ArrayLike) -> Array:
    r""":math:`dx = dy \cdot (1 - y^2)`."""
    return _activation_backward("tanh", dy, y)


def softmax(x: npt.ArrayLike) -> Array:
    r"""Row-wise :math:`y_{ij} = e^{x_{ij} - m_i} / \sum_k e^{x_{ik} - m_i}`, :math:`m_i = \max_k x_{ik}`.

    Shape: :math:`(B, C)` -> :math:`(B, C)`.
    """
    return _activation("softmax", x)


def softmax_backward(dy: npt.ArrayLike, y: npt.ArrayLike) -> Array:
    r""":math:`dx = y \odot (dy - \sum_j dy_j y_j)` per row, O(C) from the saved output."""
    return _activation_backward("softmax", dy, y)




def leaky_relu(x: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    r""":math:`y = x` for :math:`x > 0`, else :math:`\alpha x`, elementwise."""
    return _activation("leaky_relu", x, negative_slope=check_number(negative_slope, "leaky_relu: negative_slope",
                                                                    low=-math.inf))


def leaky_relu_backward(dy: npt.ArrayLike, x: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    r""":math:`dx = dy` for :math:`x > 0`, else :math:`\alpha \, dy` (from the input x)."""
    slope = check_number(negative_slope, "leaky_relu_backward: negative_slope", low=-math.inf)
    return _activation_backward("leaky_relu", dy, x, "x", negative_slope=slope)


def gelu(x: npt.ArrayLike, approximate: str = "none") -> Array:
    r""":math:`y = x \Phi(x)` (erf form) or its tanh approximation, elementwise."""
    check_gelu_form("gelu", approximate)
    return _activation(_native_args("gelu", {"approximate": approximate})[0], x, op="gelu")


def gelu_backward(dy: npt.ArrayLike, x: npt.ArrayLike, approximate: str = "none") -> Array:
    r""":math:`dx = dy \, (\Phi(x) + x \varphi(x))`, or the derivative of the tanh form (from the input x)."""
    check_gelu_form("gelu_backward", approximate)
    return _activation_backward(_native_args("gelu", {"approximate": approximate})[0], dy, x, "x", op="gelu_backward")


def log_softmax(x: npt.ArrayLike) -> Array:
    r"""Row-wise :math:`y_{ij} = x_{ij} - m_i - \log \sum_k e^{x_{ik} - m_i}`, :math:`m_i = \max_k x_{ik}`.

    Shape: :math:`(B, C)` -> :math:`(B, C)`.
    """
    return _activation("log_softmax", x)


def log_softmax_backward(dy: npt.ArrayLike, y: npt.ArrayLike) -> Array:
    r""":math:`dx = dy - e^{y} \sum_j dy_j` per row, from the saved output."""
    return _activation_backward("log_softmax", dy, y)


# ---------------------------------------------------------------------------------------------
# By name, on arrays of any rank: the layers' entry points. Their arrays are already checked and
# contiguous (the layer's as_input/as_grad), so these go straight to the kernels, which check
# them again natively, without the conversions above.


def _rows_of(a):
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


def _native_args(kind, kwargs):
    """The kernel's kind and extra argument for an activation and its keyword arguments."""
    if kind == "leaky_relu":
        return kind, (kwargs.get("negative_slope", 0.01),)
    if kind == "gelu" and kwargs.get("approximate", "none") == "tanh":
        return "gelu_tanh", ()
    return kind, ()


def activation_forward(kind, x, kwargs):
    """kind(x) by name (None: x itself); softmax and log_softmax over the last axis of any rank."""
    if kind is None:
        return x
    if x.size == 0:
        return x.copy()
    if kind in ROW_ACTIVATIONS:
        return _native.activation(_rows_of(x), kind).reshape(x.shape)
    name, extra = _native_args(kind, kwargs)
    return _native.activation(x, name, *extra)


def activation_backward(kind, dy, y, x, kwargs):
    """dL/dx from dL/dy and the saved output y or input x (ACTIVATION_KINDS says which)."""
    if kind is None or dy.size == 0:
        return dy.copy()
    saved = y if ACTIVATION_KINDS[kind][0] == "y" else x
    if kind in ROW_ACTIVATIONS:
        return _native.activation_backward(_rows_of(dy), _rows_of(saved), kind).reshape(dy.shape)
    name, extra = _native_args(kind, kwargs)
    return _native.activation_backward(dy, saved, name, *extra)
