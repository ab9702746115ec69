"""Convolution layers: `Conv1d`, `Conv2d` (PyTorch: NCHW, weight (out, in/groups, kH, kW)) and
`Conv1D`, `Conv2D` (Keras: NHWC by default, kernel (kH, kW, in/groups, out)).

Each layer keeps its weight in the layout its data layout takes, so the native kernel reads both
directly (no transposes on the way in or out), and converts only where the other dialect's layout
is asked for (`get_weights`/`set_weights` speak Keras's). A 1-D layer runs as a 2-D one of height
1, on views. Padding other than zeros (PyTorch's padding_mode) pads a copy of the input first, as
PyTorch does, and folds the gradient of the padded cells back onto the cells they copy.
"""
from typing import Any, ClassVar
import math

import numpy as np

from .. import _registry
from .._checks import (ROW_ACTIVATIONS, as_grad, as_input, check_activation_name, check_flag, check_int,
                       float_dtype, numeric_array)
from .._random import generator
from ..module import Module, Saved
from ..ops.activations import activation_backward, activation_forward
from ..ops.conv import conv2d, conv2d_backward
from ..parameter import Parameter
from . import _window

# Fused into the kernel's write-back in the layer path (their derivative needs only the output), as
# the dense layers and the plan's steps do; the others run after the product.
_FUSED = ("relu", "sigmoid", "tanh")
_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class _Conv(_window.Layout, Module):
    """What the four convolution layers share. Subclasses set `rank` (1 or 2) and `channels_last`,
    and call `_setup`."""

    padding_mode = "zeros"
    _act = None
    _act_kwargs: dict[str, Any] = {}
    _fused = None
    _kernel_act = None

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, dtype,
               activation=None, negative_slope=None):
        layer = type(self).__name__
        n = self.rank
        self.out_channels = check_int(out_channels, f"{layer}: out_channels", 1, error=ValueError)
        self.kernel_size = _window.tuple_of(kernel_size, n, "kernel_size", layer)
        self.stride = _window.tuple_of(stride, n, "stride", layer)
        self.dilation = _window.tuple_of(dilation, n, "dilation", layer)
        self.groups = check_int(groups, f"{layer}: groups", 1, error=ValueError)
        if self.out_channels % self.groups:
            raise ValueError(f"{layer}: out_channels={self.out_channels} is not divisible by groups={self.groups}")
        if isinstance(padding, str):
            if padding not in self._PADDINGS:
                raise ValueError(f"{layer}: padding must be one of {self._PADDINGS} or sizes, got {padding!r}")
            self.padding = padding
        else:
            self.padding = _window.tuple_of(padding, n, "padding", layer, minimum=0)
        self.in_channels = None
        if in_channels is not None:
            self._set_in_channels(in_channels)
        self.dtype = float_dtype(dtype)
        self.activation = check_activation_name(layer, activation)
        self._act = None if activation == "linear" else activation
        if self._act == "leaky_relu":
            self._act_kwargs = {"negative_slope": 0.2 if negative_slope is None else negative_slope}
        self._fused = self._act if self._act in _FUSED else None
        self._kernel_act = None if self._fused is not None else self._act
        self.weight = None
        self.bias = None
        self._saved = Saved()

    def _set_in_channels(self, in_channels):
        layer = type(self).__name__
        in_channels = check_int(in_channels, f"{layer}: in_channels", 1, error=ValueError)
        if in_channels % self.groups:
            raise ValueError(f"{layer}: in_channels={in_channels} is not divisible by groups={self.groups}")
        self.in_channels = in_channels

    # --- layouts ---------------------------------------------------------------------------------
    def _weight_shape(self, in_channels):
        per_group = in_channels // self.groups
        if self.channels_last:
            return (*self.kernel_size, per_group, self.out_channels)
        return (self.out_channels, per_group, *self.kernel_size)

    def _weight4(self, w):
        """A 1-D layer's weight as the 2-D kernel takes it (a view): kernel height 1 inserted."""
        if self.rank == 2:
            return w
        return w.reshape(1, *w.shape) if self.channels_last else w.reshape(*w.shape[:2], 1, w.shape[2])

    # --- geometry --------------------------------------------------------------------------------
    def _geometry(self, sizes):
        """(padding per axis, output sizes) for input sizes; ValueError when the kernel does not fit."""
        pads = _window.resolve_padding(self.padding, sizes, self.kernel_size, self.stride, self.dilation)
        outs = tuple(_window.output_length(n, k, s, d, b, a) for n, k, s, d, (b, a)
                     in zip(sizes, self.kernel_size, self.stride, self.dilation, pads))
        _window.check_fits(repr(self), sizes, self.kernel_size, self.dilation, pads, outs)
        return pads, outs

    def _out_shape(self, batch, outs):
        return self._with_spatial((batch, self.out_channels), outs)

    def _attrs2d(self, pads):
        pads2d = _window.as_2d(pads, self.rank, (0, 0))
        return dict(stride=_window.as_2d(self.stride, self.rank, 1),
                    padding=_window.flat_padding(pads2d),
                    dilation=_window.as_2d(self.dilation, self.rank, 1),
                    groups=self.groups, layout=self._layout)

    def _pad_input(self, x4, pads):
        """x with its padding cells filled by padding_mode (a copy), as PyTorch's F.pad does."""
        (t, b), (l, r) = _window.as_2d(pads, self.rank, (0, 0))
        sizes = self._spatial(x4.shape)
        if self.padding_mode == "reflect" and (max(t, b) >= sizes[0] or max(l, r) >= sizes[1]):
            raise ValueError(f"{self!r}: reflect padding {pads} must be smaller than the input size {sizes}")
        spatial = ((t, b), (l, r))
        width = ((0, 0), *spatial, (0, 0)) if self.channels_last else ((0, 0), (0, 0), *spatial)
        return np.pad(x4, width, mode=_PAD_MODES[self.padding_mode])

    def _fold_padding(self, dxp, x_shape4, pads):
        """The gradient of `_pad_input`: each padded cell's gradient added onto the cell it copies."""
        (t, b), (l, r) = _window.as_2d(pads, self.rank, (0, 0))
        axes = (1, 2) if self.channels_last else (2, 3)
        out = dxp
        for axis, (before, after) in zip(axes, ((t, b), (l, r))):
            size = x_shape4[axis]
            source = np.pad(np.arange(size), (before, after), mode=_PAD_MODES[self.padding_mode])
            folded = np.zeros(out.shape[:axis] + (size,) + out.shape[axis + 1:], dtype=out.dtype)
            index = [slice(None)] * out.ndim
            index[axis] = source
            np.add.at(folded, tuple(index), out)
            out = folded
        return np.ascontiguousarray(out)

    # --- forward and backward ---------------------------------------------------------------------
    def forward(self, x):
        x = as_input(x, self.dtype, self, ndim=self.rank + 2, what=self._what)
        if self.weight is None:
            self.build(x.shape)
        if self._channels(x.shape) != self.in_channels:
            raise ValueError(f"{self!r}: expected input {self._what} with {self.in_channels} channels, "
                             f"got shape {x.shape}")
        sizes = self._spatial(x.shape)
        pads, outs = self._geometry(sizes)
        x4 = x.reshape(self._shape4(x.shape))
        if self.padding_mode != "zeros":
            x4 = self._pad_input(x4, pads)
            pads = tuple((0, 0) for _ in pads)
        bias = None if self.bias is None else self.bias.data
        out_shape = self._out_shape(x.shape[0], outs)
        if x.shape[0] == 0:
            z = np.zeros(out_shape, dtype=self.dtype)
        else:
            z = conv2d(x4, self._weight4(self.weight.data), bias, activation=self._fused,
                       negative_slope=self._act_kwargs.get("negative_slope", 0.01),
                       **self._attrs2d(pads)).reshape(out_shape)
        y = z if self._kernel_act is None else activation_forward(self._kernel_act, z, self._act_kwargs)
        s = self._saved
        s.x, s.z, s.y, s.extra = x, z, y, (x4, pads)  # the (padded) 2-D view and its padding
        return y

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = as_grad(dy, self.dtype, self, s.y.shape)
        if self._act is not None:
            dy = activation_backward(self._act, dy, s.y, s.z, self._act_kwargs)
        if s.x.shape[0] == 0:
            return np.zeros_like(s.x)
        x4, pads = s.extra
        w4 = self._weight4(self.weight.data)
        # A frozen weight still goes through the same kernel into a scratch gradient, so that dx
        # and the bias gradient have exactly the bits the native plan gives.
        dW = self.weight.grad if self.weight.requires_grad else np.zeros_like(self.weight.data)
        db = self.bias.grad if self.bias is not None and self.bias.requires_grad else False
        dx4, _, _ = conv2d_backward(dy.reshape(self._shape4(dy.shape)), x4, w4,
                                    dW=self._weight4(dW), db=db, **self._attrs2d(pads))
        if self.padding_mode != "zeros":
            dx4 = self._fold_padding(dx4, self._shape4(s.x.shape), self._geometry(self._spatial(s.x.shape))[0])
        return dx4.reshape(s.x.shape)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if all(n is None for n in shape):  # nothing known yet, not even the rank
            shape = (None,) * (self.rank + 2)
        if len(shape) != self.rank + 2:
            raise ValueError(f"{self!r}: expected a {self.rank + 2}-D input {self._what}, got shape {shape}")
        channels = self._channels(shape)
        if channels is not None and self.in_channels is not None and channels != self.in_channels:
            raise ValueError(f"{self!r}: expected input {self._what} with {self.in_channels} channels, "
                             f"got shape {shape}")
        sizes = self._spatial(shape)
        if any(n is None for n in sizes):
            outs = (None,) * self.rank
        else:
            outs = self._geometry(sizes)[1]
        return self._out_shape(shape[0], outs)

    def plan_step(self, input_shape=None):
        """This layer as a native plan step: a "conv2d" with its activation (see _plan.py)."""
        if (not self.built or self.padding_mode != "zeros" or self._act in ROW_ACTIVATIONS
                or input_shape is None or any(n is None for n in self._spatial(input_shape))):
            return None
        pads, _ = self._geometry(self._spatial(input_shape))
        a = self._attrs2d(pads)
        (sh, sw), (t, b, l, r), (dh, dw) = a["stride"], a["padding"], a["dilation"]
        return {"kind": "conv2d", "params": {"weight": self.weight, "bias": self.bias},
                "attrs": {"stride_h": sh, "stride_w": sw, "pad_top": t, "pad_bottom": b, "pad_left": l,
                          "pad_right": r, "dilation_h": dh, "dilation_w": dw, "groups": self.groups,
                          "layout": a["layout"], "activation": self._act, **self._act_kwargs}}

    # --- weights in Keras's layout ------------------------------------------------------------------
    def _to_keras(self, arr):
        if arr.ndim < 3 or self.channels_last:
            return arr
        return arr.transpose(*range(2, arr.ndim), 1, 0)  # (out, in, *k) -> (*k, in, out)

    def _from_keras(self, arr):
        if arr.ndim < 3 or self.channels_last:
            return arr
        return arr.transpose(arr.ndim - 1, arr.ndim - 2, *range(arr.ndim - 2))

    @property
    def built(self):
        return self.weight is not None

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.rank + 2:
            raise ValueError(f"{self!r}: expected a {self.rank + 2}-D input {self._what}, got shape {shape}")
        channels = self._channels(shape)
        if self.in_channels is None:
            self._set_in_channels(channels)
        elif channels is not None and channels != self.in_channels:
            raise ValueError(f"{self!r}: expected input {self._what} with {self.in_channels} channels, "
                             f"got shape {shape}")
        if not self.built:
            self._init_parameters()

    def _own_state(self):
        if self.built:
            yield from super()._own_state()
        else:
            yield "weight", "parameter", None
            if self.use_bias:
                yield "bias", "parameter", None

    def _build_from_shape(self, shape, where, keras):
        """Build a lazy layer from a stored weight's shape (its own layout, or Keras's)."""
        k_layout = keras or self.channels_last
        kernel = tuple(shape[:-2]) if k_layout else tuple(shape[2:])
        out = shape[-1] if k_layout else shape[0]
        if len(shape) != self.rank + 2 or min(shape) < 1 or out != self.out_channels or kernel != self.kernel_size:
            k = ", ".join(map(str, self.kernel_size))
            want = (f"({k}, in_channels/groups, {self.out_channels})" if k_layout
                    else f"({self.out_channels}, in_channels/groups, {k})")
            raise ValueError(f"{where} has shape {tuple(shape)}; {self!r} expects {want}")
        channels = (shape[-2] if k_layout else shape[1]) * self.groups
        self.build((None, *(None,) * self.rank, channels) if self.channels_last
                   else (None, channels, *(None,) * self.rank))

    def _build_from_state(self, state, prefix):
        key = prefix + "weight"
        if not self.built and key in state:
            shape = numeric_array(state[key], f"state_dict[{key!r}]", "value").shape
            self._build_from_shape(shape, f"state_dict[{key!r}]", keras=False)

    def _build_from_weights(self, weights):
        if not self.built and weights:
            shape = numeric_array(weights[0], f"{self!r}.set_weights", "kernel").shape
            self._build_from_shape(shape, f"{self!r}.set_weights: kernel", keras=True)

    @property
    def use_bias(self):
        return self.__dict__.get("_use_bias", True)

    # --- config -----------------------------------------------------------------------------------
    @classmethod
    def config_parameters(cls, config, input_shape):
        """(parameters, per-sample output shape) from a config, counted from its numbers alone:
        building the layer would allocate its weight, which is what `load`'s guard must avoid."""
        args = {k: v for k, v in config.items() if k not in ("class", "name")}
        try:
            probe = cls(**cls._probe_args(args))  # one channel in and out: allocates nothing large
            groups = check_int(args.get("groups", 1), "groups", 1)
            n_out = check_int(args.get(cls._OUT_KEY), cls._OUT_KEY, 1)
        except (TypeError, ValueError):
            return 0, None
        shape = args.get("input_shape") or input_shape
        n_in = args.get("in_channels") or (probe._channels((None, *shape)) if shape else None)
        if not isinstance(n_in, int) or isinstance(n_in, bool) or n_in < 1:
            return 0, None
        count = n_out * (n_in // groups) * math.prod(probe.kernel_size)
        count += n_out if args.get(cls._BIAS_KEY, True) else 0
        out = None
        if input_shape is not None:
            try:
                one = probe.output_shape((1, *input_shape[:-1], 1) if probe.channels_last else (1, 1, *input_shape[1:]))
            except (TypeError, ValueError):
                return count, None
            out = (*one[1:-1], n_out) if probe.channels_last else (n_out, *one[2:])
        return count, out


class _TorchConv(_Conv):
    _PADDINGS = ("valid", "same")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if device not in (None, "cpu"):
            raise ValueError(f"{layer}: device={device!r}: lamina runs on the CPU")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"{layer}: padding_mode must be one of {list(_PAD_MODES)}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.__dict__["_use_bias"] = check_flag(bias, "bias")
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, dtype)
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"{layer}: padding='same' is not supported for strided convolutions "
                             f"(stride={self.stride}), as in PyTorch")
        self._init_parameters()

    def _init_parameters(self):
        # PyTorch's default: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        # for the weight and the bias alike.
        shape = self._weight_shape(self.in_channels)
        fan_in = math.prod(shape[1:])
        bound = 1.0 / math.sqrt(fan_in)
        rng = generator()
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(self.dtype))
        if self.use_bias:
            self.bias = Parameter(rng.uniform(-bound, bound, self.out_channels).astype(self.dtype))

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return self._with_name({
            "class": type(self).__name__, "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": padding,
            "dilation": list(self.dilation), "groups": self.groups, "bias": self.use_bias,
            "padding_mode": self.padding_mode, "dtype": self.dtype.name})


    _CONFIG_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                    "bias", "padding_mode", "dtype")
    _OUT_KEY, _BIAS_KEY = "out_channels", "bias"

    @staticmethod
    def _probe_args(args):
        return {**args, "in_channels": 1, "out_channels": 1, "groups": 1}

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.rank:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * self.rank:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.use_bias:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s + _dtype_repr(self.dtype)


class Conv2d(_TorchConv):
    r"""2-D convolution over an (N, C_in, H, W) batch, PyTorch's `nn.Conv2d`:

    .. math:: y(n, o) = b(o) + \sum_{k} W(o, k) \star x(n, g(o) \cdot C_{in}/G + k)

    computed by the native implicit-GEMM kernel (patches gathered into the packed panels).

    Args:
        in_channels, out_channels (int): channel counts; both divisible by `groups`.
        kernel_size, stride, dilation (int or tuple): per spatial axis.
        padding (int, tuple, 'valid' or 'same'): zero (or padding_mode) cells on both sides; 'same'
            keeps the size (stride 1 only, as in PyTorch; an odd total puts the extra cell at the end).
        groups (int): input and output channels split into this many independent groups.
        bias (bool): learn an additive bias. Default: True.
        padding_mode (str): 'zeros', 'reflect', 'replicate' or 'circular'.
        dtype: float32 (default) or float64.

    Shape:
        - Input: (N, C_in, H, W). Output: (N, C_out, H_out, W_out) with
          H_out = floor((H + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.
        - weight: (C_out, C_in / groups, kH, kW); bias: (C_out,). Both from
          U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in / groups * kH * kW, as in PyTorch.

    Example:
        >>> Conv2d(1, 6, 5)(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
        (2, 6, 24, 24)
    """


class Conv1d(_TorchConv):
    r"""1-D convolution over an (N, C_in, L) batch, PyTorch's `nn.Conv1d` (arguments as `Conv2d`,
    one spatial axis).

    Shape:
        - Input: (N, C_in, L). Output: (N, C_out, L_out). weight: (C_out, C_in / groups, k).

    Example:
        >>> Conv1d(4, 8, 3, padding=1)(np.zeros((2, 4, 10), dtype=np.float32)).shape
        (2, 8, 10)
    """

    rank = 1


class _KerasConv(_Conv):
    _PADDINGS: ClassVar[tuple[str, ...]] = ("valid", "same")
    _CONFIG_KEYS: ClassVar[tuple[str, ...]] = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                    "activation", "use_bias", "input_shape", "dtype")
    _OUT_KEY, _BIAS_KEY = "filters", "use_bias"

    @staticmethod
    def _probe_args(args):
        return {**args, "filters": 1, "groups": 1, "input_shape": None}

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", input_shape=None, dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if kernel_initializer != "glorot_uniform" or bias_initializer != "zeros":
            raise ValueError(f"{layer}: only the default initializers (glorot_uniform, zeros) are supported; "
                             f"set other weights with set_weights")
        if data_format is None:
            data_format = "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"{layer}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
        if not isinstance(padding, str):
            raise ValueError(f"{layer}: padding must be one of {self._PADDINGS}, got {padding!r}")
        padding = padding.lower()
        self.channels_last = data_format == "channels_last"
        self.data_format = data_format
        self.__dict__["_use_bias"] = check_flag(use_bias, "use_bias")
        self.filters = check_int(filters, f"{layer}: filters", 1, error=ValueError)
        self._setup(None, filters, kernel_size, strides, padding, dilation_rate, groups, dtype, activation)
        self.input_shape = None
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) != self.rank + 1:
                raise ValueError(f"{layer}: input_shape must have {self.rank + 1} entries "
                                 f"(spatial sizes and channels), got {input_shape!r}")
            self.input_shape = shape
            self.build((None, *shape))

    @property
    def strides(self):
        return self.stride

    @property
    def dilation_rate(self):
        return self.dilation

    def _init_parameters(self):
        # Keras's glorot_uniform on the (*k, in/groups, out) kernel: fans count the receptive field.
        shape = self._weight_shape_keras(self.in_channels)
        receptive = math.prod(self.kernel_size)
        limit = math.sqrt(6.0 / (shape[-2] * receptive + shape[-1] * receptive))
        kernel = generator().uniform(-limit, limit, shape)
        self.weight = Parameter(np.ascontiguousarray(self._from_keras(kernel), dtype=self.dtype))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self.out_channels, dtype=self.dtype))

    def _weight_shape_keras(self, in_channels):
        return (*self.kernel_size, in_channels // self.groups, self.out_channels)

    def get_config(self):
        return self._with_name({
            "class": type(self).__name__, "filters": self.filters, "kernel_size": list(self.kernel_size),
            "strides": list(self.stride), "padding": self.padding, "data_format": self.data_format,
            "dilation_rate": list(self.dilation), "groups": self.groups, "activation": self.activation,
            "use_bias": self.use_bias,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "dtype": self.dtype.name})

    def extra_repr(self):
        s = f"{self.filters}, kernel_size={self.kernel_size}"
        if self.stride != (1,) * self.rank:
            s += f", strides={self.stride}"
        if self.padding != "valid":
            s += f", padding={self.padding!r}"
        if not self.channels_last:
            s += ", data_format='channels_first'"
        if self.dilation != (1,) * self.rank:
            s += f", dilation_rate={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        if not self.use_bias:
            s += ", use_bias=False"
        return s + _dtype_repr(self.dtype)


class Conv2D(_KerasConv):
    r"""Keras's 2-D convolution: :math:`y = \mathrm{activation}(\mathrm{conv}(x, K) + b)` over an
    (N, H, W, C) batch (data_format='channels_first': (N, C, H, W)), activation fused into the
    native kernel's write-back.

    Args:
        filters (int): output channels.
        kernel_size, strides, dilation_rate (int or tuple): per spatial axis.
        padding (str): 'valid' (none) or 'same' (output ceil(size / strides); an odd total puts
            the extra cell at the end, as Keras does, for any stride).
        data_format (str): 'channels_last' (default) or 'channels_first'.
        groups (int): channels split into this many independent groups.
        activation (str or None): as `Dense`'s.
        use_bias (bool): learn an additive bias. Default: True.
        input_shape (tuple or None): (H, W, C) or (C, H, W); None builds on the first call.
        dtype: float32 (default) or float64.

    Shape:
        - kernel: (kH, kW, C_in / groups, filters), Glorot-uniform; bias (filters,) zeros.
          `get_weights()` returns [kernel, bias] in that layout; `state_dict()` names them weight and
          bias, the weight in the layout the data takes ((kH, kW, C_in/groups, filters) for
          channels_last, PyTorch's (filters, C_in/groups, kH, kW) for channels_first).

    Example:
        >>> Conv2D(32, 3, activation="relu")(np.zeros((2, 28, 28, 1), dtype=np.float32)).shape
        (2, 26, 26, 32)
    """


class Conv1D(_KerasConv):
    r"""Keras's 1-D convolution over an (N, L, C) batch (arguments as `Conv2D`, one spatial axis),
    with padding='causal' too: all d (k - 1) padding cells before the sequence.

    Example:
        >>> Conv1D(8, 3, padding="causal")(np.zeros((2, 10, 4), dtype=np.float32)).shape
        (2, 10, 8)
    """

    rank = 1
    _PADDINGS = ("valid", "same", "causal")


def _dtype_repr(dtype):
    return "" if dtype == np.float32 else f", dtype={dtype.name}"


_registry.register(Conv1d, Conv2d, Conv1D, Conv2D)
