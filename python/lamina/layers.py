"""Layers: `Parameter`, the `Module` protocol, `Linear`, `Dense` and the activation modules.

Each layer is thin glue over `lamina.ops`: forward validates its input, calls one fused kernel and keeps
what backward needs; backward calls the matching `*_backward` kernel and accumulates into `p.grad`.
"""
import math
import operator
from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from . import _changes, ops
from ._random import generator

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


# ----------------------------------------------------------------------------------------------
# argument and input checks shared by every layer
# ----------------------------------------------------------------------------------------------

def _float_dtype(dtype):
    # np.dtype(None) means float64 to NumPy; here None is a mistake, not a default.
    if dtype is None:
        raise TypeError("dtype must be float32 or float64, got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _who(who):
    # Layers are named by their repr, built only when an error is raised (forward is a hot path).
    return who if isinstance(who, str) else repr(who)


def _numeric_array(x, who, what="input"):
    """np.asarray(x) for real numbers only: bool, complex, object and strings are a TypeError."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{_who(who)}: {what} dtype {arr.dtype} is not supported "
                        f"(use float32, float64 or an integer type)")
    if not arr.dtype.isnative:
        # '>f8' is float64 in another byte order, not "some other dtype" to cast to float32.
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _as_batch(x, dtype, who, features=None):
    """Check and convert a layer input to a C-contiguous (batch, features) array of `dtype`.

    dtype None keeps float32/float64 as given and casts anything else numeric to float32.
    """
    arr = _numeric_array(x, who)
    if arr.ndim != 2:
        raise ValueError(f"{_who(who)}: expected a 2-D input (batch, features), got shape {arr.shape}")
    if features is not None and arr.shape[1] != features:
        raise ValueError(f"{_who(who)}: expected input of shape (batch, {features}), got shape {arr.shape}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in _FLOAT_DTYPES else np.float32
    return np.ascontiguousarray(arr, dtype=dtype)


def _as_grad(dy, dtype, who, shape):
    """Check and convert an upstream gradient: it must have exactly the shape forward returned."""
    arr = _numeric_array(dy, who, "gradient")
    if arr.shape != tuple(shape):
        raise ValueError(f"{_who(who)}: backward expected a gradient of shape {tuple(shape)} "
                         f"(the shape forward returned), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_shape(input_shape, who):
    """Normalise an (batch, features) shape used for shape inference; either entry may be None."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{_who(who)}: input_shape must be a tuple (batch, features), "
                        f"got {input_shape!r}") from None
    if len(shape) != 2:
        raise ValueError(f"{_who(who)}: expected a 2-D input shape (batch, features), got {shape}")
    return shape


def _linear_backward(dy, x, weight, bias):
    """dx = dy @ W; W.grad += dy.T @ x; b.grad += dy.sum(0) (in place, so optimizers see it)."""
    if x.shape[0] == 0:
        return np.zeros_like(x)
    dx, _, _ = ops.linear_backward(dy, x, weight.data, dW=weight.grad,
                                   db=bias.grad if bias is not None else False)
    return dx


# ----------------------------------------------------------------------------------------------
# Parameter and the Module protocol
# ----------------------------------------------------------------------------------------------

class Parameter:
    """A trainable array and its gradient.

    `data` and `grad` are NumPy arrays of the same shape and dtype; `grad` starts at zero and
    backward passes accumulate into it in place, so optimizers may hold on to both arrays.

    Args:
        data (numpy.ndarray): float32 or float64 values (either byte order); used as is when
            C-contiguous, aligned, writeable and in native byte order, otherwise copied.

    Example:
        >>> p = Parameter(np.ones((2, 3), dtype=np.float32))
        >>> p.grad.shape, p.grad.dtype
        ((2, 3), dtype('float32'))
    """

    __slots__ = ("data", "grad")

    def __setattr__(self, name, value):
        # Compiled native plans point at the arrays themselves: rebinding one is a change they
        # must see (see _changes.py); in-place updates need nothing.
        object.__setattr__(self, name, value)
        _changes.happened()

    def __init__(self, data):
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Parameter data must be float32 or float64, got {arr.dtype}")
        # The kernels update data in place through typed pointers: it must be aligned too.
        self.data = np.require(arr, requirements=["C", "A", "W"])
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"Parameter of dtype {self.data.dtype} cannot be viewed as {np.dtype(dtype)}")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every lamina layer and of `Sequential`.

    The protocol: `y = m(x)` (same as `m.forward(x)`) caches what `m.backward(dy)` needs; backward
    returns dL/dx and ADDS the parameter gradients into `p.grad`. `zero_grad()` clears them.
    Forward keeps references to the arrays it saw and returned: do not modify them in place before
    calling backward. NaN and Inf in an input propagate to the output, as in NumPy.
    """

    def __init__(self):
        self.training = True
        self._params = {}

    # --- forward / backward -------------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    # --- parameters ---------------------------------------------------------------------------
    def named_parameters(self):
        """Yield (name, Parameter) pairs, names as in PyTorch ("weight", "bias", "0.weight", ...)."""
        yield from self._params.items()

    def parameters(self):
        """Return the list of Parameters, in `named_parameters()` order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        """Total number of scalar parameters (0 for a lazy layer that is not built yet)."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        """Set every `p.grad` to zero in place."""
        for p in self.parameters():
            p.grad.fill(0)

    # --- mode ---------------------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (returns self). No lamina layer behaves differently yet."""
        self.training = _flag(mode, "mode")
        return self

    def eval(self):
        """Set evaluation mode; same as `train(False)`."""
        return self.train(False)

    # --- shapes and lazy building ---------------------------------------------------------------
    @property
    def built(self):
        """True once the layer has its parameters (lazy layers build on first call)."""
        return True

    def build(self, input_shape):
        """Create the parameters for inputs of `input_shape` = (batch, features); no-op by default."""

    def output_shape(self, input_shape):
        """Shape of the output for an input of `input_shape` = (batch, features); None means unknown."""
        return _check_shape(input_shape, self)

    # --- state --------------------------------------------------------------------------------
    def state_dict(self):
        """Return {name: copy of p.data}, with PyTorch's names and shapes (weight is (out, in))."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def _state_keys(self):
        # Keys a full state_dict has, known even before a lazy layer is built.
        return [name for name, _ in self.named_parameters()]

    def _build_from_state(self, state, prefix):
        # Lazy layers build themselves from the shapes in a state_dict; built layers do nothing.
        pass

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of `state_dict` into the parameters, in place.

        Values may be NumPy arrays or anything with `__array__` (a CPU torch tensor, for example);
        they are cast to the parameter dtype. Everything is checked before anything is written: with
        `strict=True` missing or unexpected keys raise KeyError; a wrong shape or a non-numeric
        dtype raises ValueError or TypeError. A lazy layer that is not built yet is built from the
        shapes it is given.

        Returns:
            IncompatibleKeys: (missing_keys, unexpected_keys), both empty when strict.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, "
                            f"got {type(state_dict).__name__}")
        expected = self._state_keys()
        expected_set = set(expected)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected_set]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"error loading state_dict into {type(self).__name__}: "
                           + "; ".join(parts))
        self._build_from_state(state_dict, "")
        targets = []
        for name, p in self.named_parameters():
            if name not in state_dict:
                continue
            arr = _numeric_array(state_dict[name], f"state_dict[{name!r}]", "value")
            if arr.shape != p.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {arr.shape}, "
                                 f"the model expects {p.shape}")
            if not p.data.flags.writeable:
                # Found now, not by np.copyto after earlier parameters were overwritten.
                raise ValueError(f"parameter {name!r} is read-only; nothing was loaded")
            targets.append((p, arr))
        for p, arr in targets:
            np.copyto(p.data, arr, casting="unsafe")  # into the existing array: views stay valid
        return IncompatibleKeys(missing, unexpected)

    # --- Keras-style weights --------------------------------------------------------------------
    def get_weights(self):
        """Return copies of the parameters in Keras's layout: kernels (in, out), then biases."""
        return [p.data.T.copy() if p.data.ndim == 2 else p.data.copy() for p in self.parameters()]

    def _num_weights(self):
        return len(self._state_keys())

    def _build_from_weights(self, weights):
        pass

    def _check_weights(self, weights, who=None):
        # Returns the weights converted to the internal (out, in) layout, ready to copy.
        who = who or type(self).__name__
        params = self.parameters()
        if len(weights) != len(params):
            raise ValueError(f"{who}.set_weights expects {len(params)} arrays, got {len(weights)}")
        out = []
        for i, (w, p) in enumerate(zip(weights, params)):
            arr = _numeric_array(w, f"{who}.set_weights", f"weight {i}")
            want = p.shape[::-1] if p.data.ndim == 2 else p.shape
            if arr.shape != want:
                raise ValueError(f"{who}.set_weights: weight {i} has shape {arr.shape}, expected {want}")
            out.append((p, arr.T if arr.ndim == 2 else arr))
        return out

    def set_weights(self, weights):
        """Set parameters from Keras-layout arrays (kernel (in, out), bias (out,)); all are checked
        before any is written."""
        weights = list(weights)
        self._build_from_weights(weights)
        for p, arr in self._check_weights(weights):
            np.copyto(p.data, arr, casting="unsafe")

    # --- config and printing --------------------------------------------------------------------
    def get_config(self):
        """JSON-able description {"class": name, **constructor arguments}; see `layer_from_config`."""
        return {"class": type(self).__name__}

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _dtype_repr(dtype):
    return "" if dtype == np.float32 else f", dtype={dtype.name}"


# ----------------------------------------------------------------------------------------------
# Linear (PyTorch) and Dense (Keras)
# ----------------------------------------------------------------------------------------------

class Linear(Module):
    r"""Fully connected layer: :math:`y = x W^T + b`.

    W and b are initialised from U(-1/sqrt(in_features), 1/sqrt(in_features)), as in PyTorch.

    Args:
        in_features (int): size of each input row.
        out_features (int): size of each output row.
        bias (bool): learn an additive bias. Default: True.
        dtype: float32 (default) or float64.

    Shape:
        - Input: (B, in_features); integer inputs are cast to `dtype`. B = 0 gives a (0, out) output.
        - Output: (B, out_features).
        - weight: (out_features, in_features); bias: (out_features,).

    Example:
        >>> m = Linear(20, 30)
        >>> m(np.zeros((128, 20), dtype=np.float32)).shape
        (128, 30)
    """

    _CONFIG_KEYS = ("in_features", "out_features", "bias", "dtype")

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.dtype = _float_dtype(dtype)
        use_bias = _flag(bias, "bias")
        bound = 1.0 / math.sqrt(self.in_features)
        rng = generator()
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(self.dtype))
        self._params["weight"] = self.weight
        self.bias = None
        if use_bias:
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_features).astype(self.dtype))
            self._params["bias"] = self.bias
        self._x = None

    def forward(self, x):
        x = _as_batch(x, self.dtype, self, self.in_features)
        self._x = x
        if x.shape[0] == 0:
            return np.zeros((0, self.out_features), dtype=self.dtype)
        return ops.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = _as_grad(dy, self.dtype, self, (self._x.shape[0], self.out_features))
        return _linear_backward(dy, self._x, self.weight, self.bias)

    def output_shape(self, input_shape):
        batch, features = _check_shape(input_shape, self)
        if features is not None and features != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.in_features}), "
                             f"got shape {(batch, features)}")
        return (batch, self.out_features)

    def get_config(self):
        return {"class": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "dtype": self.dtype.name}

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{_dtype_repr(self.dtype)}")


_DENSE_ACTIVATIONS = (None, "linear", "relu", "sigmoid", "tanh", "softmax")


class Dense(Module):
    r"""Keras's densely connected layer: :math:`y = \mathrm{activation}(x K + b)`.

    Stored like `Linear` (weight = K^T of shape (units, in), state_dict keys "weight" and "bias");
    `get_weights()`/`set_weights()` use Keras's layout [kernel (in, units), bias (units,)]. The kernel
    is Glorot-uniform, U(-sqrt(6 / (in + units)), +sqrt(...)), and the bias starts at zero. Without
    `input_shape` the layer is built on its first call (or when a `Sequential` can infer its input).
    relu, sigmoid and tanh are fused into the GEMM epilogue; softmax runs over each output row.

    Args:
        units (int): output size.
        activation (str or None): None or "linear" (identity), "relu", "sigmoid", "tanh", "softmax".
        input_shape (tuple or None): (in_features,), as in Keras; None builds lazily.
        use_bias (bool): learn an additive bias. Default: True.
        dtype: float32 (default) or float64.

    Shape:
        - Input: (B, in_features); integer inputs are cast to `dtype`. B = 0 gives a (0, units) output.
        - Output: (B, units).

    Example:
        >>> layer = Dense(units=6, input_shape=(8,), activation="relu")
        >>> layer.num_parameters()
        54
    """

    _CONFIG_KEYS = ("units", "activation", "input_shape", "use_bias", "dtype")

    def __init__(self, units, activation=None, input_shape=None, use_bias=True, dtype=np.float32):
        super().__init__()
        self.units = _positive_int(units, "units")
        if activation not in _DENSE_ACTIVATIONS:
            raise ValueError(f"Dense: unknown activation {activation!r}; "
                             f"expected one of {list(_DENSE_ACTIVATIONS)}")
        self.activation = activation
        self._act = None if activation == "linear" else activation
        self.use_bias = _flag(use_bias, "use_bias")
        self.dtype = _float_dtype(dtype)
        self.input_shape = None
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") \
                    or len(input_shape) != 1:
                raise ValueError(f"Dense: input_shape must be a 1-tuple (in_features,), "
                                 f"got {input_shape!r}")
            self.input_shape = (_positive_int(input_shape[0], "input_shape[0]"),)
        self.weight = None
        self.bias = None
        self._x = None
        self._y = None
        if self.input_shape is not None:
            self.build((None, self.input_shape[0]))

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
        _, features = _check_shape(input_shape, self)
        features = _positive_int(features, f"{self!r}: input features")
        if self.in_features is not None and features != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.in_features}), "
                             f"got shape {tuple(input_shape)}")
        if self.built:
            return
        limit = math.sqrt(6.0 / (features + self.units))
        # Drawn in Keras's (in, units) layout, stored transposed as (units, in) like Linear.
        kernel = generator().uniform(-limit, limit, (features, self.units))
        self.weight = Parameter(np.ascontiguousarray(kernel.T, dtype=self.dtype))
        self._params["weight"] = self.weight
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.units, dtype=self.dtype))
            self._params["bias"] = self.bias

    def forward(self, x):
        x = _as_batch(x, self.dtype, self, self.in_features)
        if not self.built:
            self.build(x.shape)
        if x.shape[0] == 0:
            y = np.zeros((0, self.units), dtype=self.dtype)
        else:
            b = None if self.bias is None else self.bias.data
            if self._act == "softmax":
                y = ops.softmax(ops.linear(x, self.weight.data, b))
            else:
                y = ops.linear(x, self.weight.data, b, activation=self._act)
        self._x, self._y = x, y
        return y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = _as_grad(dy, self.dtype, self, self._y.shape)
        if self._act is not None and dy.shape[0] > 0:
            dy = getattr(ops, self._act + "_backward")(dy, self._y)
        return _linear_backward(dy, self._x, self.weight, self.bias)

    def output_shape(self, input_shape):
        batch, features = _check_shape(input_shape, self)
        if features is not None and self.in_features is not None and features != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.in_features}), "
                             f"got shape {(batch, features)}")
        return (batch, self.units)

    def _state_keys(self):
        return ["weight", "bias"] if self.use_bias else ["weight"]

    def _build_from_state(self, state, prefix):
        key = prefix + "weight"
        if self.built or key not in state:
            return
        shape = _numeric_array(state[key], f"state_dict[{key!r}]", "value").shape
        if len(shape) != 2 or shape[0] != self.units or shape[1] < 1:
            raise ValueError(f"state_dict[{key!r}] has shape {shape}, "
                             f"the model expects ({self.units}, in_features)")
        self.build((None, shape[1]))

    def _build_from_weights(self, weights):
        if self.built or not weights:
            return
        shape = _numeric_array(weights[0], f"{self!r}.set_weights", "kernel").shape
        if len(shape) != 2 or shape[1] != self.units or shape[0] < 1:
            raise ValueError(f"{self!r}.set_weights: kernel has shape {shape}, "
                             f"expected (in_features, {self.units})")
        self.build((None, shape[0]))

    def get_config(self):
        features = self.in_features
        return {"class": "Dense", "units": self.units, "activation": self.activation,
                "input_shape": None if features is None else [features],
                "use_bias": self.use_bias, "dtype": self.dtype.name}

    def extra_repr(self):
        s = f"units={self.units}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        if self.in_features is not None:
            s += f", input_shape=({self.in_features},)"
        if not self.use_bias:
            s += ", use_bias=False"
        return s + _dtype_repr(self.dtype)


# ----------------------------------------------------------------------------------------------
# activations: backward uses the saved output, as every derivative here is a function of y
# ----------------------------------------------------------------------------------------------

class _Activation(Module):
    _op = None
    _CONFIG_KEYS = ()

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        x = _as_batch(x, None, self)
        y = getattr(ops, self._op)(x) if x.size else x.copy()
        self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = _as_grad(dy, self._y.dtype, self, self._y.shape)
        if dy.size == 0:
            return dy.copy()
        return getattr(ops, self._op + "_backward")(dy, self._y)


class ReLU(_Activation):
    r"""Elementwise :math:`\max(0, x)`; backward: dx = dy * (y > 0).

    Shape:
        - Input: (B, N) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> ReLU()(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """
    _op = "relu"


class Sigmoid(_Activation):
    r"""Elementwise :math:`1 / (1 + e^{-x})`; backward: dx = dy * y * (1 - y).

    Shape:
        - Input: (B, N) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> Sigmoid()(np.zeros((1, 2)))
        array([[0.5, 0.5]])
    """
    _op = "sigmoid"


class Tanh(_Activation):
    r"""Elementwise :math:`\tanh(x)`; backward: dx = dy * (1 - y^2).

    Shape:
        - Input: (B, N) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> Tanh()(np.zeros((1, 2)))
        array([[0., 0.]])
    """
    _op = "tanh"


class Softmax(_Activation):
    r"""Row-wise :math:`y_{ij} = e^{x_{ij}} / \sum_k e^{x_{ik}}` (stable: the row max is subtracted);
    backward: dx = y * (dy - sum(dy * y, axis=1)).

    Args:
        dim (int): only the last axis is supported: -1 or 1 (accepted for PyTorch compatibility).

    Shape:
        - Input: (B, N) float32 or float64 (integers are cast to float32). Output: same, rows sum to 1.

    Example:
        >>> Softmax()(np.zeros((1, 4)))
        array([[0.25, 0.25, 0.25, 0.25]])
    """
    _op = "softmax"
    _CONFIG_KEYS = ("dim",)

    def __init__(self, dim=-1):
        super().__init__()
        if isinstance(dim, (bool, np.bool_)) or dim not in (-1, 1):
            raise ValueError(f"Softmax: only the feature axis is supported (dim=-1 or 1), got {dim!r}")
        self.dim = int(dim)

    def get_config(self):
        return {"class": "Softmax", "dim": self.dim}

    def extra_repr(self):
        return f"dim={self.dim}"


# ----------------------------------------------------------------------------------------------
# rebuilding layers from configs (used by save/load: only known classes, never eval)
# ----------------------------------------------------------------------------------------------

_LAYER_CLASSES = {cls.__name__: cls for cls in (Linear, Dense, ReLU, Sigmoid, Tanh, Softmax)}


def layer_from_config(cfg):
    """Build a layer from `get_config()` output; only lamina's own classes are known.

    Raises:
        TypeError: `cfg` is not a mapping.
        ValueError: unknown class or unknown configuration keys (constructors check the values).

    Example:
        >>> layer_from_config({"class": "Linear", "in_features": 3, "out_features": 2})
        Linear(in_features=3, out_features=2, bias=True)
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"layer config must be a mapping, got {type(cfg).__name__}")
    name = cfg.get("class")
    if name == "Sequential":
        from .sequential import Sequential
        return Sequential.from_config(cfg)
    if not isinstance(name, str) or name not in _LAYER_CLASSES:
        known = sorted(_LAYER_CLASSES) + ["Sequential"]
        raise ValueError(f"unknown layer class {name!r} in config; known classes: {known}")
    cls = _LAYER_CLASSES[name]
    kwargs = {k: v for k, v in cfg.items() if k != "class"}
    unknown = sorted(str(k) for k in kwargs if k not in cls._CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in {name} config; "
                         f"allowed: {list(cls._CONFIG_KEYS)}")
    return cls(**kwargs)
