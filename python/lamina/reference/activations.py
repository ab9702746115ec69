"""Activations. Backward passes take the forward *output* y, which is all each derivative needs."""
import math

import numpy as np

from .._checks import check_gelu_form, check_ndim, check_number, check_shape
from ._core import SQRT_2_OVER_PI, as_f64, gelu_tanh_inner, normal_cdf, relu_formula, sigmoid_formula

__all__ = ['relu', 'relu_backward', 'sigmoid', 'sigmoid_backward', 'tanh', 'tanh_backward', 'softmax', 'softmax_backward', 'leaky_relu', 'leaky_relu_backward', 'gelu', 'gelu_backward', 'log_softmax', 'log_softmax_backward']


def relu(x):
    r"""Rectified linear unit, elementwise: :math:`y = \max(x, 0)`.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> relu(np.array([-1.0, 2.0]))
        array([0., 2.])
    """
    return relu_formula(as_f64("relu", "x", x))


def relu_backward(dy, y):
    r"""Gradient of ReLU: :math:`dx = dy \cdot [y > 0]`.

    Args:
        dy: upstream gradient.
        y: the forward output ``relu(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> relu_backward(np.array([5.0, 5.0]), np.array([0.0, 2.0]))
        array([0., 5.])
    """
    dy, y = _pair("relu_backward", dy, y)
    return np.where(y > 0, dy, 0.0)


def sigmoid(x):
    r"""Logistic sigmoid, elementwise: :math:`y = 1 / (1 + e^{-x})`, evaluated without overflow.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> sigmoid(np.array([0.0]))
        array([0.5])
    """
    return sigmoid_formula(as_f64("sigmoid", "x", x))


def sigmoid_backward(dy, y):
    r"""Gradient of the sigmoid: :math:`dx = dy \cdot y (1 - y)`.

    Args:
        dy: upstream gradient.
        y: the forward output ``sigmoid(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> sigmoid_backward(np.array([1.0]), np.array([0.5]))
        array([0.25])
    """
    dy, y = _pair("sigmoid_backward", dy, y)
    return dy * y * (1.0 - y)


def tanh(x):
    r"""Hyperbolic tangent, elementwise: :math:`y = \tanh(x)`.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> tanh(np.array([0.0]))
        array([0.])
    """
    return np.tanh(as_f64("tanh", "x", x))


def tanh_backward(dy, y):
    r"""Gradient of tanh: :math:`dx = dy \cdot (1 - y^2)`.

    Args:
        dy: upstream gradient.
        y: the forward output ``tanh(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> tanh_backward(np.array([1.0]), np.array([0.0]))
        array([1.])
    """
    dy, y = _pair("tanh_backward", dy, y)
    return dy * (1.0 - y * y)


def softmax(x):
    r"""Softmax over each row: :math:`y_{ij} = e^{x_{ij} - m_i} / \sum_k e^{x_{ik} - m_i}`, :math:`m_i = \max_k x_{ik}`.

    Subtracting the row maximum changes nothing mathematically and keeps every exponent <= 0, so
    logits of any finite magnitude give finite probabilities.

    Args:
        x: logits, one row per sample.

    Shape:
        - x: :math:`(B, C)`
        - Output: :math:`(B, C)`, float64, rows sum to 1

    Example::

        >>> softmax(np.array([[0.0, 0.0]]))
        array([[0.5, 0.5]])
    """
    x = as_f64("softmax", "x", x)
    check_ndim("softmax", "x", x, 2, "(batch, classes)")
    return _softmax(x)


def _softmax(x):
    # An empty class axis has no maximum; its softmax is the empty row.
    if x.shape[1] == 0:
        return np.zeros_like(x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(dy, y):
    r"""Gradient of the row softmax: :math:`dx = y \odot (dy - \sum_k dy_{\cdot k} \, y_{\cdot k})`.

    Args:
        dy: upstream gradient.
        y: the forward output ``softmax(x)``.

    Shape:
        - dy, y: :math:`(B, C)`
        - Output: :math:`(B, C)`, float64

    Example::

        >>> softmax_backward(np.array([[1.0, 1.0]]), np.array([[0.5, 0.5]]))
        array([[0., 0.]])
    """
    dy, y = _pair("softmax_backward", dy, y)
    check_ndim("softmax_backward", "y", y, 2, "(batch, classes)")
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))


def _pair(op, dy, y, name="y"):
    dy = as_f64(op, "dy", dy)
    y = as_f64(op, name, y)
    check_shape(op, "dy", dy, y.shape, f"(the shape of {name})")
    return dy, y




def leaky_relu(x, negative_slope=0.01):
    r"""Leaky ReLU: :math:`y = x` for :math:`x > 0`, else :math:`\alpha x`.

    Example::

        >>> leaky_relu(np.array([-1.0, 2.0]), 0.1)
        array([-0.1,  2. ])
    """
    slope = check_number(negative_slope, "leaky_relu: negative_slope", low=-math.inf)
    x = as_f64("leaky_relu", "x", x)
    return np.where(x > 0, x, slope * x)


def leaky_relu_backward(dy, x, negative_slope=0.01):
    r"""Gradient of leaky ReLU, from the input: :math:`dx = dy` for :math:`x > 0`, else :math:`\alpha\,dy`."""
    slope = check_number(negative_slope, "leaky_relu_backward: negative_slope", low=-math.inf)
    dy, x = _pair("leaky_relu_backward", dy, x, "x")
    return np.where(x > 0, dy, slope * dy)


def gelu(x, approximate="none"):
    r"""GELU: :math:`x \Phi(x) = \frac{x}{2}\,\mathrm{erfc}(-x / \sqrt 2)`, or with
    ``approximate="tanh"`` :math:`\frac{x}{2}(1 + \tanh u) = x \, \sigma(2u)`,
    :math:`u = \sqrt{2/\pi}(x + 0.044715 x^3)`. Written in the forms that do not cancel for
    :math:`x \ll 0`; the kernels use PyTorch's, which lose relative accuracy there (see the tests).

    Example::

        >>> gelu(np.array([0.0]))
        array([0.])
    """
    check_gelu_form("gelu", approximate)
    x = as_f64("gelu", "x", x)
    if approximate == "tanh":
        return x * sigmoid_formula(2.0 * gelu_tanh_inner(x))
    return x * normal_cdf(x)


def gelu_backward(dy, x, approximate="none"):
    r"""Gradient of GELU, from the input: :math:`dx = dy\,(\Phi(x) + x \varphi(x))`, with
    :math:`\varphi(x) = e^{-x^2/2} / \sqrt{2\pi}`; for the tanh form, with :math:`s = \sigma(2u)`
    (so :math:`\frac{1}{2}(1 + \tanh u) = s` and :math:`1 - \tanh^2 u = 4 s (1 - s)`):
    :math:`dx = dy\,(s + 2 x s (1 - s) \sqrt{2/\pi}(1 + 3 \cdot 0.044715 x^2))`.
    """
    check_gelu_form("gelu_backward", approximate)
    dy, x = _pair("gelu_backward", dy, x, "x")
    if approximate == "tanh":
        u = gelu_tanh_inner(x)
        s, one_minus_s = sigmoid_formula(2.0 * u), sigmoid_formula(-2.0 * u)
        return dy * (s + 2.0 * x * s * one_minus_s * SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return dy * (normal_cdf(x) + x * pdf)


def log_softmax(x):
    r"""Row-wise log-softmax: :math:`y_{ij} = x_{ij} - m_i - \log \sum_k e^{x_{ik} - m_i}`,
    :math:`m_i = \max_k x_{ik}`.

    Shape:
        - x: :math:`(B, C)`
        - Output: :math:`(B, C)`, float64

    Example::

        >>> np.exp(log_softmax(np.zeros((1, 2))))
        array([[0.5, 0.5]])
    """
    x = as_f64("log_softmax", "x", x)
    check_ndim("log_softmax", "x", x, 2, "(batch, classes)")
    if x.shape[1] == 0:
        return np.zeros_like(x)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def log_softmax_backward(dy, y):
    r"""Gradient of the row log-softmax, from its output: :math:`dx = dy - e^{y} \sum_k dy_{\cdot k}`."""
    dy, y = _pair("log_softmax_backward", dy, y)
    check_ndim("log_softmax_backward", "y", y, 2, "(batch, classes)")
    return dy - np.exp(y) * dy.sum(axis=1, keepdims=True)
