"""Activation layers: ReLU, LeakyReLU, GELU, Sigmoid, Tanh, Softmax, LogSoftmax (PyTorch's names)
and Keras's `Activation("relu")`.

Each derivative is a function of the saved output y (relu, sigmoid, tanh, softmax, log_softmax)
or of the input x (leaky_relu, gelu): `_checks.ACTIVATION_KINDS` says which one backward needs.
"""
from typing import Any, ClassVar, Optional
import math

import numpy as np

from .. import _registry
from .._checks import as_grad, as_input, check_activation_name, check_number
from ..ops.activations import activation_backward, activation_forward
from ..module import Module, Saved

class _Activation(Module):
    _op: ClassVar[Optional[str]] = None
    _CONFIG_KEYS: ClassVar[tuple[str, ...]] = ()

    _kwargs: dict[str, Any] = {}  # the op's keyword arguments (negative_slope, approximate)

    def __init__(self, name=None):
        super().__init__(name)
        self._saved = Saved()

    def forward(self, x):
        x = as_input(x, None, self, what="(batch, features) or an N-D input (batch, ...)")
        s = self._saved
        s.x, s.y = x, activation_forward(self._op, x, self._kwargs)
        return s.y

    def backward(self, dy):
        s = self._saved
        if s.y is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = as_grad(dy, s.y.dtype, self, s.y.shape)
        return activation_backward(self._op, dy, s.y, s.x, self._kwargs)

    def plan_step(self, input_shape=None):
        """This layer as a native plan step (fused into a dense step before it; see _plan.py)."""
        return {"kind": "activation", "params": {}, "attrs": {"activation": self._op, **self._kwargs}}


class ReLU(_Activation):
    r"""Elementwise :math:`\max(0, x)`; backward: dx = dy * (y > 0).

    Shape:
        - Input: (B, *) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> ReLU()(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """
    _op = "relu"


class LeakyReLU(_Activation):
    r"""Elementwise :math:`x` for :math:`x > 0`, else :math:`\alpha x`; backward from the input:
    dx = dy for x > 0, else :math:`\alpha` dy.

    Args:
        negative_slope (float): :math:`\alpha`. Default: 0.01 (PyTorch's).

    Shape:
        - Input: (B, *). Output: same.

    Example:
        >>> LeakyReLU(0.1)(np.array([[-1.0, 2.0]]))
        array([[-0.1,  2. ]])
    """
    _op = "leaky_relu"
    _CONFIG_KEYS = ("negative_slope",)

    def __init__(self, negative_slope=0.01, name=None):
        super().__init__(name)
        self.negative_slope = check_number(negative_slope, "LeakyReLU: negative_slope", low=-math.inf)
        self._kwargs = {"negative_slope": self.negative_slope}

    def get_config(self):
        return self._with_name({"class": "LeakyReLU", "negative_slope": self.negative_slope})

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(_Activation):
    r"""Gaussian error linear unit, :math:`x \Phi(x)` with :math:`\Phi` the normal CDF
    (``approximate="tanh"``: :math:`\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`);
    backward from the input.

    Args:
        approximate (str): "none" (the erf form, default) or "tanh", as in PyTorch.

    Shape:
        - Input: (B, *). Output: same.

    Example:
        >>> GELU()(np.zeros((1, 2)))
        array([[0., 0.]])
    """
    _op = "gelu"
    _CONFIG_KEYS = ("approximate",)

    def __init__(self, approximate="none", name=None):
        super().__init__(name)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._kwargs = {"approximate": self.approximate}

    def get_config(self):
        return self._with_name({"class": "GELU", "approximate": self.approximate})

    def extra_repr(self):
        return "" if self.approximate == "none" else f"approximate={self.approximate!r}"


class Sigmoid(_Activation):
    r"""Elementwise :math:`1 / (1 + e^{-x})`; backward: dx = dy * y * (1 - y).

    Shape:
        - Input: (B, *) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> Sigmoid()(np.zeros((1, 2)))
        array([[0.5, 0.5]])
    """
    _op = "sigmoid"


class Tanh(_Activation):
    r"""Elementwise :math:`\tanh(x)`; backward: dx = dy * (1 - y^2).

    Shape:
        - Input: (B, *) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> Tanh()(np.zeros((1, 2)))
        array([[0., 0.]])
    """
    _op = "tanh"


class _RowActivation(_Activation):
    _CONFIG_KEYS = ("dim",)

    def __init__(self, dim=-1, name=None):
        super().__init__(name)
        cls = type(self).__name__
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise ValueError(f"{cls}: only the feature axis is supported (dim=-1 or 1), got {dim!r}")
        self.dim = int(dim)
        if self.dim not in (-1, 1):
            raise ValueError(f"{cls}: only the feature axis is supported (dim=-1 or 1), got {dim!r}")

    def forward(self, x):
        arr = as_input(x, None, self, what="(batch, features) or an N-D input (batch, ...)")
        if self.dim == 1 and arr.ndim != 2:
            raise ValueError(f"{self!r}: dim=1 is the last axis only for a 2-D input (batch, classes); "
                             f"use dim=-1 for shape {arr.shape}")
        return super().forward(arr)

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "dim": self.dim})

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_RowActivation):
    r"""Softmax over the last axis: :math:`y_{ij} = e^{x_{ij}} / \sum_k e^{x_{ik}}` (stable: the
    row max is subtracted); backward: dx = y * (dy - sum(dy * y, axis=-1)).

    Args:
        dim (int): only the last axis is supported: -1, or 1 for a 2-D input.

    Shape:
        - Input: (B, *, C) float32 or float64 (integers are cast to float32). Output: same, rows sum to 1.

    Example:
        >>> Softmax()(np.zeros((1, 4)))
        array([[0.25, 0.25, 0.25, 0.25]])
    """
    _op = "softmax"


class LogSoftmax(_RowActivation):
    r"""Log-softmax over the last axis: :math:`y_{ij} = x_{ij} - m_i - \log \sum_k e^{x_{ik} - m_i}`;
    backward: dx = dy - e^y sum(dy, axis=-1). Pair it with `NLLLoss` (together: cross-entropy).

    Args:
        dim (int): only the last axis is supported: -1, or 1 for a 2-D input.

    Shape:
        - Input: (B, *, C). Output: same.

    Example:
        >>> np.exp(LogSoftmax()(np.zeros((1, 2))))
        array([[0.5, 0.5]])
    """
    _op = "log_softmax"


class Activation(Module):
    """Keras's `Activation("relu")`: the named activation as a layer (None or "linear": identity).

    Example:
        >>> Activation("relu")(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """

    _CONFIG_KEYS = ("activation",)
    _KERAS_DEFAULTS = {"leaky_relu": {"negative_slope": 0.2}}

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = check_activation_name("Activation", activation)
        self._op = None if activation == "linear" else activation
        self._kwargs = self._KERAS_DEFAULTS.get(self._op, {})
        self._saved = Saved()

    forward = _Activation.forward
    backward = _Activation.backward

    def plan_step(self, input_shape=None):
        if self._op is None:
            return {"kind": "identity", "params": {}, "attrs": {}}
        return _Activation.plan_step(self)

    def get_config(self):
        return self._with_name({"class": "Activation", "activation": self.activation})

    def extra_repr(self):
        return repr(self.activation)


_registry.register(ReLU, LeakyReLU, GELU, Sigmoid, Tanh, Softmax, LogSoftmax, Activation)
