"""Dense layers: `Linear` (PyTorch) and `Dense` (Keras), y = act(x W^T + b) over the last axis.

Forward validates its input, calls one fused kernel and keeps what backward needs; backward calls
the native `linear_backward` and accumulates into the gradients of the parameters that are trained.
"""
from typing import Any
import math

import numpy as np

from .. import _native, _registry
from .._checks import as_grad, as_input, check_activation_name, check_flag, check_int, float_dtype, numeric_array
from .._random import generator
from ..module import Module, Saved
from ..parameter import Parameter
from ..ops.activations import activation_backward, activation_forward

_RANK = "(batch, features) or an N-D input (batch, ..., features)"
# Applied by the GEMM's write-back in the layer-by-layer path (their derivative needs only y);
# the others run after the product, which keeps its output for their backward.
_FUSED = ("relu", "sigmoid", "tanh")


def _check_shape(input_shape, layer):
    """Normalise an input shape (batch first, entries may be None) used for shape inference."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{layer!r}: input_shape must be a tuple (batch, ..., features), "
                        f"got {input_shape!r}") from None
    if len(shape) < 2:
        raise ValueError(f"{layer!r}: expected a 2-D input shape {_RANK}, got {shape}")
    return shape


def _rows(x):
    """x as a 2-D (rows, features) view: the dense kernels see every leading axis as rows."""
    return x if x.ndim == 2 else x.reshape(-1, x.shape[-1])


def _dense_backward(dy, x, weight, bias):
    """dx = dy @ W; W.grad += dy.T @ x; b.grad += dy.sum(0), in place, for trained parameters."""
    if x.size == 0:
        return np.zeros_like(x)
    # A frozen weight still goes through the same kernel, into a scratch gradient that is thrown
    # away: dx and the bias gradient then have exactly the bits the native plan gives (it skips dW).
    dW = weight.grad if weight.requires_grad else np.zeros_like(weight.data)
    db = bias.grad if bias is not None and bias.requires_grad else None
    dx = _native.linear_backward(_rows(dy), _rows(x), weight.data, dW, db, True)
    return dx if x.ndim == 2 else dx.reshape(x.shape)


class _DenseBase(Module):
    """What Linear and Dense share: forward/backward over the last axis, the plan step."""

    def forward(self, x):
        x = as_input(x, self.dtype, self, self.in_features, what=_RANK)
        if self.weight is None:
            self.build(x.shape)
        bias = None if self.bias is None else self.bias.data
        out_shape = (*x.shape[:-1], self.out_features)
        if x.size == 0:
            z = np.zeros(out_shape, dtype=self.dtype)
        else:
            # x is checked above and the parameters are the layer's own: straight to the kernel
            # (which checks them again natively), without lamina.ops's conversions.
            z = _native.linear(_rows(x), self.weight.data, bias, self._fused)
            if x.ndim != 2:
                z = z.reshape(out_shape)
        y = z if self._kernel_act is None else activation_forward(self._kernel_act, z, self._act_kwargs)
        s = self._saved
        s.x, s.z, s.y = x, z, y
        return y

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = as_grad(dy, self.dtype, self, s.y.shape)
        if self._act is not None:
            dy = activation_backward(self._act, dy, s.y, s.z, self._act_kwargs)
        return _dense_backward(dy, s.x, self.weight, self.bias)

    def output_shape(self, input_shape):
        shape = _check_shape(input_shape, self)
        features = shape[-1]
        if features is not None and self.in_features is not None and features != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.in_features}), "
                             f"got shape {shape}")
        return (*shape[:-1], self.out_features)

    def plan_step(self, input_shape=None):
        """This layer as a native plan step (see _plan.py)."""
        if not self.built or (self.bias is not None and self.bias.data.ndim != 1):
            return None
        return {"kind": "dense",
                "params": {"weight": self.weight, "bias": self.bias},
                "attrs": {"activation": self._act, **self._act_kwargs}}


class Linear(_DenseBase):
    r"""Fully connected layer: :math:`y = x W^T + b`, applied to the last axis.

    W and b are initialised from U(-1/sqrt(in_features), 1/sqrt(in_features)), as in PyTorch.

    Args:
        in_features (int): size of each input row.
        out_features (int): size of each output row.
        bias (bool): learn an additive bias. Default: True.
        dtype: float32 (default) or float64.

    Shape:
        - Input: (B, *, in_features); integer inputs are cast to `dtype`. B = 0 gives an empty output.
        - Output: (B, *, out_features).
        - weight: (out_features, in_features); bias: (out_features,).

    Example:
        >>> m = Linear(20, 30)
        >>> m(np.zeros((128, 20), dtype=np.float32)).shape
        (128, 30)
    """

    _CONFIG_KEYS = ("in_features", "out_features", "bias", "dtype")
    _act = None
    _fused = None
    _kernel_act = None
    _act_kwargs: dict[str, Any] = {}

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, name=None):
        super().__init__(name)
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.dtype = float_dtype(dtype)
        use_bias = check_flag(bias, "bias")
        bound = 1.0 / math.sqrt(self.in_features)
        rng = generator()
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(self.dtype))
        self.bias = None
        if use_bias:
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_features).astype(self.dtype))
        self._saved = Saved()

    @classmethod
    def config_parameters(cls, config, input_shape):
        n_in, n_out = _size(config.get("in_features")), _size(config.get("out_features"))
        return n_in * n_out + (n_out if config.get("bias", True) else 0), _last_axis(input_shape, n_out)

    def get_config(self):
        return self._with_name({"class": "Linear", "in_features": self.in_features,
                                "out_features": self.out_features, "bias": self.bias is not None,
                                "dtype": self.dtype.name})

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{_dtype_repr(self.dtype)}")


class Dense(_DenseBase):
    r"""Keras's densely connected layer: :math:`y = \mathrm{activation}(x K + b)`, on the last axis.

    Stored like `Linear` (weight = K^T of shape (units, in), state_dict keys "weight" and "bias");
    `get_weights()`/`set_weights()` use Keras's layout [kernel (in, units), bias (units,)]. The kernel
    is Glorot-uniform, U(-sqrt(6 / (in + units)), +sqrt(...)), and the bias starts at zero. Without
    `input_shape` the layer is built on its first call (or when a `Sequential` can infer its input).
    relu, sigmoid, tanh, leaky_relu and gelu are fused into the GEMM epilogue; softmax and
    log_softmax run over each output row.

    Args:
        units (int): output size.
        activation (str or None): None or "linear" (identity), "relu", "sigmoid", "tanh",
            "softmax", "leaky_relu", "gelu", "log_softmax".
        input_shape (tuple or None): (in_features,), as in Keras; None builds lazily.
        use_bias (bool): learn an additive bias. Default: True.
        dtype: float32 (default) or float64.
        name (str or None): the layer's name.

    Shape:
        - Input: (B, *, in_features); integer inputs are cast to `dtype`. B = 0 gives an empty output.
        - Output: (B, *, units).

    Example:
        >>> layer = Dense(units=6, input_shape=(8,), activation="relu")
        >>> layer.num_parameters()
        54
    """

    _CONFIG_KEYS = ("units", "activation", "input_shape", "use_bias", "dtype")

    def __init__(self, units, activation=None, input_shape=None, use_bias=True, dtype=np.float32, name=None):
        super().__init__(name)
        self.units = check_int(units, "units", 1)
        self.activation = check_activation_name("Dense", activation)
        self._act = None if activation == "linear" else activation
        self._act_kwargs = {"negative_slope": 0.2} if self._act == "leaky_relu" else {}  # Keras's default
        self._fused = self._act if self._act in _FUSED else None
        self._kernel_act = None if self._fused is not None else self._act
        self.use_bias = check_flag(use_bias, "use_bias")
        self.dtype = float_dtype(dtype)
        self.input_shape = None
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") \
                    or len(input_shape) != 1:
                raise ValueError(f"Dense: input_shape must be a 1-tuple (in_features,), "
                                 f"got {input_shape!r}")
            self.input_shape = (check_int(input_shape[0], "input_shape[0]", 1),)
        self.weight = None
        self.bias = None
        self._saved = Saved()
        if self.input_shape is not None:
            self.build((None, self.input_shape[0]))

    @property
    def out_features(self):
        return self.units

    @property
    def built(self):
        return self.weight is not None

    @property
    def in_features(self):
        """Input size: known once built or when `input_shape` was given, else None."""
        if self.weight is not None:
            return self.weight.shape[1]
        return None if self.input_shape is None else self.input_shape[0]

    def build(self, input_shape):
        features = _check_shape(input_shape, self)[-1]
        features = check_int(features, f"{self!r}: input features", 1)
        if self.in_features is not None and features != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.in_features}), "
                             f"got shape {tuple(input_shape)}")
        if self.built:
            return
        limit = math.sqrt(6.0 / (features + self.units))
        # Drawn in Keras's (in, units) layout, stored transposed as (units, in) like Linear.
        kernel = generator().uniform(-limit, limit, (features, self.units))
        self.weight = Parameter(np.ascontiguousarray(kernel.T, dtype=self.dtype))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.units, dtype=self.dtype))

    def _own_state(self):
        if self.built:
            yield from super()._own_state()
        else:
            yield from (("weight", "parameter", None), *((("bias", "parameter", None),) if self.use_bias else ()))

    def _build_from_state(self, state, prefix):
        key = prefix + "weight"
        if self.built or key not in state:
            return
        shape = numeric_array(state[key], f"state_dict[{key!r}]", "value").shape
        if len(shape) != 2 or shape[0] != self.units or shape[1] < 1:
            raise ValueError(f"state_dict[{key!r}] has shape {shape}, "
                             f"the model expects ({self.units}, in_features)")
        self.build((None, shape[1]))

    def _build_from_weights(self, weights):
        if self.built or not weights:
            return
        shape = numeric_array(weights[0], f"{self!r}.set_weights", "kernel").shape
        if len(shape) != 2 or shape[1] != self.units or shape[0] < 1:
            raise ValueError(f"{self!r}.set_weights: kernel has shape {shape}, "
                             f"expected (in_features, {self.units})")
        self.build((None, shape[0]))

    @classmethod
    def config_parameters(cls, config, input_shape):
        units = _size(config.get("units"))
        shape = config.get("input_shape")
        n_in = _size(shape[0]) if isinstance(shape, list) and shape else _size(input_shape and input_shape[-1])
        return n_in * units + (units if config.get("use_bias", True) else 0), _last_axis(input_shape, units)

    def get_config(self):
        features = self.in_features
        return self._with_name({"class": "Dense", "units": self.units, "activation": self.activation,
                                "input_shape": None if features is None else [features],
                                "use_bias": self.use_bias, "dtype": self.dtype.name})

    def extra_repr(self):
        s = f"units={self.units}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        if self.in_features is not None:
            s += f", input_shape=({self.in_features},)"
        if not self.use_bias:
            s += ", use_bias=False"
        return s + _dtype_repr(self.dtype)


def _size(value):
    # A positive int from a config, else 0 (the constructor rejects it with a precise message).
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _last_axis(input_shape, size):
    return (*input_shape[:-1], size) if input_shape else (size,)


def _dtype_repr(dtype):
    return "" if dtype == np.float32 else f", dtype={dtype.name}"


_registry.register(Linear, Dense)
