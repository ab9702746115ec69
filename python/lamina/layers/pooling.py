"""Pooling layers: PyTorch's `MaxPool1d/2d`, `AvgPool1d/2d`, `AdaptiveAvgPool1d/2d` on (N, C, ...)
batches, and Keras's `MaxPooling1D/2D`, `AveragePooling1D/2D`, `GlobalAveragePooling1D/2D`,
`GlobalMaxPooling1D/2D` on (N, ..., C) batches (or channels_first).

Each runs the native 2-D kernel of its layout on views (a 1-D layer has height 1). Max pooling keeps
the winners' positions from forward for backward; PyTorch's windows are padded with cells that never
win a max (and count in an average only with count_include_pad); Keras's 'same' pads so the output
has ceil(size / stride) cells, the odd cell at the end, and never counts the padding.
"""
from typing import ClassVar
import numpy as np

from .. import _registry
from .._checks import as_grad, as_input, check_flag, check_int
from ..module import Module, Saved
from ..ops.pooling import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward,
                           max_pool2d, max_pool2d_backward)
from . import _window


class _Pool(_window.Layout, Module):
    """Shared by every pooling layer: layout, 2-D views, shape checks. Subclasses set `rank`,
    `channels_last` and implement `_windows(sizes)` -> (kernel, stride, dilation, pads, outs) or
    override `forward`/`backward`."""

    _CONFIG_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name=None):
        super().__init__(name)
        self._saved = Saved()

    def _input(self, x):
        return as_input(x, None, self, ndim=self.rank + 2, what=self._what)

    def _check_rank(self, shape):
        if all(n is None for n in shape):  # nothing known yet, not even the rank
            return
        if len(shape) != self.rank + 2:
            raise ValueError(f"{self!r}: expected a {self.rank + 2}-D input {self._what}, got shape {tuple(shape)}")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_rank(shape)
        if all(n is None for n in shape):
            shape = (None,) * (self.rank + 2)
        sizes = self._spatial(shape)
        if any(n is None for n in sizes):
            return self._with_spatial(shape, (None,) * self.rank)
        return self._with_spatial(shape, self._geometry(sizes)[-1])

    @classmethod
    def config_parameters(cls, config, input_shape):
        if input_shape is None:
            return 0, None
        args = {k: v for k, v in config.items() if k not in ("class", "name")}
        try:
            return 0, cls(**args).output_shape((1, *input_shape))[1:]
        except (TypeError, ValueError):
            return 0, None


class _WindowPool(_Pool):
    """Max and average pooling over sliding windows."""

    _max = True
    dilation = None
    ceil_mode = False
    count_include_pad = True
    divisor_override = None

    def _geometry(self, sizes):
        pads = _window.resolve_padding(self.padding, sizes, self.kernel_size, self.stride, self._dilation)
        outs = tuple(_window.output_length(n, k, s, d, b, a, self.ceil_mode) for n, k, s, d, (b, a)
                     in zip(sizes, self.kernel_size, self.stride, self._dilation, pads))
        _window.check_fits(repr(self), sizes, self.kernel_size, self._dilation, pads, outs)
        return pads, outs

    @property
    def _dilation(self):
        return self.dilation or (1,) * self.rank

    def _attrs2d(self, pads):
        attrs = dict(kernel=_window.as_2d(self.kernel_size, self.rank, 1),
                     stride=_window.as_2d(self.stride, self.rank, 1),
                     padding=_window.flat_padding(_window.as_2d(pads, self.rank, (0, 0))),
                     ceil_mode=self.ceil_mode, layout=self._layout)
        if self._max:
            attrs["dilation"] = _window.as_2d(self._dilation, self.rank, 1)
        else:
            attrs.update(count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)
        return attrs

    def forward(self, x):
        x = self._input(x)
        pads, outs = self._geometry(self._spatial(x.shape))
        out_shape = self._with_spatial(x.shape, outs)
        s = self._saved
        s.x, s.extra = x, None  # extra: the winners' positions (max pooling)
        if x.size == 0:
            return np.zeros(out_shape, dtype=x.dtype)
        x4 = x.reshape(self._shape4(x.shape))
        if self._max:
            y, s.extra = max_pool2d(x4, **self._attrs2d(pads))
        else:
            y = avg_pool2d(x4, **self._attrs2d(pads))
        return y.reshape(out_shape)

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        x = s.x
        pads, outs = self._geometry(self._spatial(x.shape))
        dy = as_grad(dy, x.dtype, self, self._with_spatial(x.shape, outs))
        if x.size == 0:
            return np.zeros_like(x)
        dy4 = dy.reshape(self._shape4(dy.shape))
        shape4 = self._shape4(x.shape)
        if self._max:
            dx = max_pool2d_backward(dy4, s.extra, shape4, layout=self._layout)
        else:
            dx = avg_pool2d_backward(dy4, shape4, **self._attrs2d(pads))
        return dx.reshape(x.shape)

    def plan_step(self, input_shape=None):
        """This layer as a native plan step (max_pool2d or avg_pool2d; see _plan.py)."""
        if input_shape is None or any(n is None for n in self._spatial(input_shape)):
            return None
        pads, _ = self._geometry(self._spatial(input_shape))
        a = self._attrs2d(pads)
        (kh, kw), (sh, sw), (t, b, l, r) = a["kernel"], a["stride"], a["padding"]
        attrs = {"kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": t,
                 "pad_bottom": b, "pad_left": l, "pad_right": r, "ceil_mode": self.ceil_mode,
                 "layout": self._layout}
        if self._max:
            attrs["dilation_h"], attrs["dilation_w"] = a["dilation"]
            return {"kind": "max_pool2d", "params": {}, "attrs": attrs}
        attrs.update(count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)
        return {"kind": "avg_pool2d", "params": {}, "attrs": attrs}


# ---- PyTorch's ------------------------------------------------------------------------------------

class _TorchPool(_WindowPool):
    def _setup(self, kernel_size, stride, padding, ceil_mode, dilation=1):
        layer = type(self).__name__
        n = self.rank
        self.kernel_size = _window.tuple_of(kernel_size, n, "kernel_size", layer)
        self.stride = self.kernel_size if stride is None else _window.tuple_of(stride, n, "stride", layer)
        self.padding = _window.tuple_of(padding, n, "padding", layer, minimum=0)
        self.ceil_mode = check_flag(ceil_mode, "ceil_mode")
        if self._max:
            self.dilation = _window.tuple_of(dilation, n, "dilation", layer)
        for p, k, d in zip(self.padding, self.kernel_size, self._dilation):
            if p > (d * (k - 1) + 1) // 2:
                raise ValueError(f"{layer}: padding {self.padding} must be at most half of the "
                                 f"effective kernel size {self.kernel_size} (dilation {self._dilation})")

    def extra_repr(self):
        s = f"kernel_size={_scalar(self.kernel_size)}, stride={_scalar(self.stride)}, padding={_scalar(self.padding)}"
        if self._max:
            s += f", dilation={_scalar(self._dilation)}"
        s += f", ceil_mode={self.ceil_mode}"
        if not self._max:
            s += f", count_include_pad={self.count_include_pad}"
        return s


class _TorchMaxPool(_TorchPool):
    _CONFIG_KEYS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                 name=None):
        super().__init__(name)
        if check_flag(return_indices, "return_indices"):
            raise ValueError(f"{type(self).__name__}: return_indices=True is not supported (a layer returns "
                             f"one array; its backward keeps the indices itself)")
        self._setup(kernel_size, stride, padding, ceil_mode, dilation)

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "kernel_size": list(self.kernel_size),
                                "stride": list(self.stride), "padding": list(self.padding),
                                "dilation": list(self.dilation), "ceil_mode": self.ceil_mode})


class MaxPool2d(_TorchMaxPool):
    r"""2-D max pooling over an (N, C, H, W) batch, PyTorch's `nn.MaxPool2d`:
    :math:`y(n, c, i, j) = \max_{a, b} x(n, c, s_h i + d_h a - p_h, s_w j + d_w b - p_w)`; padding
    cells never win. Backward routes each gradient to its window's winner (saved by forward).

    Args:
        kernel_size (int or tuple): window size.
        stride (int, tuple or None): default `kernel_size`.
        padding (int or tuple): at most half the (dilated) window on each side.
        dilation (int or tuple): spacing of the window's cells.
        ceil_mode (bool): count a last partial window that starts inside the input.

    Shape:
        - Input: (N, C, H, W). Output: (N, C, H_out, W_out),
          H_out = floor((H + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ceil_mode).

    Example:
        >>> MaxPool2d(2)(np.zeros((1, 3, 28, 28), dtype=np.float32)).shape
        (1, 3, 14, 14)
    """


class MaxPool1d(_TorchMaxPool):
    r"""1-D max pooling over an (N, C, L) batch, PyTorch's `nn.MaxPool1d` (arguments as MaxPool2d).

    Example:
        >>> MaxPool1d(2)(np.zeros((1, 3, 10), dtype=np.float32)).shape
        (1, 3, 5)
    """

    rank = 1


class _TorchAvgPool(_TorchPool):
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, name=None):
        super().__init__(name)
        self._setup(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = check_flag(count_include_pad, "count_include_pad")
        if divisor_override is not None:
            divisor_override = check_int(divisor_override, f"{type(self).__name__}: divisor_override", 1,
                                         error=ValueError)
        self.divisor_override = divisor_override

    def get_config(self):
        config = {"class": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": list(self.padding), "ceil_mode": self.ceil_mode,
                  "count_include_pad": self.count_include_pad}
        if self.rank == 2:
            config["divisor_override"] = self.divisor_override
        return self._with_name(config)


class AvgPool2d(_TorchAvgPool):
    r"""2-D average pooling over an (N, C, H, W) batch, PyTorch's `nn.AvgPool2d`: each output is
    its window's sum divided by the window size (padding cells included with count_include_pad,
    cells past the padded input never), or by `divisor_override`.

    Args:
        kernel_size, stride, padding, ceil_mode: as MaxPool2d.
        count_include_pad (bool): count padding cells in the divisor. Default: True.
        divisor_override (int or None): divide by this instead.

    Example:
        >>> AvgPool2d(2)(np.ones((1, 3, 4, 4), dtype=np.float32))[0, 0]
        array([[1., 1.],
               [1., 1.]], dtype=float32)
    """

    _CONFIG_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")


class AvgPool1d(_TorchAvgPool):
    r"""1-D average pooling over an (N, C, L) batch, PyTorch's `nn.AvgPool1d`.

    Example:
        >>> AvgPool1d(2)(np.ones((1, 3, 10), dtype=np.float32)).shape
        (1, 3, 5)
    """

    rank = 1
    _CONFIG_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, name=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, None, name=name)


class _AdaptiveAvgPool(_Pool):
    def __init__(self, output_size, name=None):
        super().__init__(name)
        sizes = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * self.rank
        if len(sizes) != self.rank:
            raise ValueError(f"{type(self).__name__}: output_size must be an int or {self.rank} ints, got {output_size!r}")
        self.output_size = tuple(None if s is None else check_int(s, f"{type(self).__name__}: output_size", 1,
                                                                   error=ValueError) for s in sizes)

    _CONFIG_KEYS = ("output_size",)

    def _geometry(self, sizes):
        return (tuple(n if o is None else o for n, o in zip(sizes, self.output_size)),)

    def forward(self, x):
        x = self._input(x)
        outs = self._geometry(self._spatial(x.shape))[0]
        s = self._saved
        s.x = x
        out_shape = self._with_spatial(x.shape, outs)
        if x.size == 0:
            return np.zeros(out_shape, dtype=x.dtype)
        y = adaptive_avg_pool2d(x.reshape(self._shape4(x.shape)), _window.as_2d(outs, self.rank, 1), layout=self._layout)
        return y.reshape(out_shape)

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        x = s.x
        dy = as_grad(dy, x.dtype, self, self.output_shape(x.shape))
        if x.size == 0:
            return np.zeros_like(x)
        dx = adaptive_avg_pool2d_backward(dy.reshape(self._shape4(dy.shape)), self._shape4(x.shape), layout=self._layout)
        return dx.reshape(x.shape)

    def plan_step(self, input_shape=None):
        if input_shape is None or any(n is None for n in self._spatial(input_shape)):
            return None
        oh, ow = _window.as_2d(self._geometry(self._spatial(input_shape))[0], self.rank, 1)
        return {"kind": "adaptive_avg_pool2d", "params": {},
                "attrs": {"out_h": oh, "out_w": ow, "layout": self._layout}}

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "output_size": list(self.output_size)})

    def extra_repr(self):
        return f"output_size={_scalar(self.output_size)}"


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    r"""PyTorch's `nn.AdaptiveAvgPool2d(output_size)`: output cell (i, j) averages input rows
    floor(i H / H_out) .. ceil((i + 1) H / H_out) - 1 and the columns alike; None keeps that size.

    Example:
        >>> AdaptiveAvgPool2d((1, 1))(np.ones((2, 3, 5, 7), dtype=np.float32)).shape
        (2, 3, 1, 1)
    """


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    r"""PyTorch's `nn.AdaptiveAvgPool1d(output_size)` over an (N, C, L) batch.

    Example:
        >>> AdaptiveAvgPool1d(1)(np.ones((2, 3, 5), dtype=np.float32)).shape
        (2, 3, 1)
    """

    rank = 1


# ---- Keras's --------------------------------------------------------------------------------------

def _data_format(layer, data_format):
    if data_format is None:
        data_format = "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{layer}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return data_format


class _KerasPool(_WindowPool):
    count_include_pad = False  # Keras's 'same' average never counts the padding
    _CONFIG_KEYS = ("pool_size", "strides", "padding", "data_format")

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None):
        super().__init__(name)
        layer = type(self).__name__
        self.kernel_size = _window.tuple_of(pool_size, self.rank, "pool_size", layer)
        self.stride = self.kernel_size if strides is None else _window.tuple_of(strides, self.rank, "strides", layer)
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in ("valid", "same"):
            raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self.data_format = _data_format(layer, data_format)
        self.channels_last = self.data_format == "channels_last"

    @property
    def pool_size(self):
        return self.kernel_size

    @property
    def strides(self):
        return self.stride

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "pool_size": list(self.kernel_size),
                                "strides": list(self.stride), "padding": self.padding,
                                "data_format": self.data_format})

    def extra_repr(self):
        s = f"pool_size={self.kernel_size}, strides={self.stride}"
        if self.padding != "valid":
            s += f", padding={self.padding!r}"
        if not self.channels_last:
            s += ", data_format='channels_first'"
        return s


class MaxPooling2D(_KerasPool):
    r"""Keras's `MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid")` over an
    (N, H, W, C) batch (or channels_first); 'same' pads so the output has ceil(size / strides)
    cells, the odd cell at the end, and the padding never wins.

    Example:
        >>> MaxPooling2D((2, 2))(np.zeros((1, 26, 26, 32), dtype=np.float32)).shape
        (1, 13, 13, 32)
    """


class MaxPooling1D(_KerasPool):
    r"""Keras's `MaxPooling1D(pool_size=2)` over an (N, L, C) batch.

    Example:
        >>> MaxPooling1D(2)(np.zeros((1, 10, 4), dtype=np.float32)).shape
        (1, 5, 4)
    """

    rank = 1


class AveragePooling2D(_KerasPool):
    r"""Keras's `AveragePooling2D(pool_size=(2, 2), strides=None, padding="valid")`; with 'same',
    padded cells are not counted.

    Example:
        >>> AveragePooling2D(2)(np.ones((1, 4, 4, 3), dtype=np.float32)).shape
        (1, 2, 2, 3)
    """

    _max = False


class AveragePooling1D(_KerasPool):
    r"""Keras's `AveragePooling1D(pool_size=2)` over an (N, L, C) batch.

    Example:
        >>> AveragePooling1D(2)(np.ones((1, 10, 4), dtype=np.float32)).shape
        (1, 5, 4)
    """

    rank = 1
    _max = False


class _GlobalPool(_Pool):
    """Keras's global pooling: every spatial cell of each channel to one value, (N, C) out
    (keepdims=True keeps the spatial axes with size 1)."""

    _max = False
    _CONFIG_KEYS = ("data_format", "keepdims")

    def __init__(self, data_format=None, keepdims=False, name=None):
        super().__init__(name)
        self.data_format = _data_format(type(self).__name__, data_format)
        self.channels_last = self.data_format == "channels_last"
        self.keepdims = check_flag(keepdims, "keepdims")

    def _channels_axis(self, ndim):
        return ndim - 1 if self.channels_last else 1

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_rank(shape)
        if all(n is None for n in shape):
            shape = (None,) * (self.rank + 2)
        if self.keepdims:
            return self._with_spatial(shape, (1,) * self.rank)
        return (shape[0], shape[self._channels_axis(len(shape))])

    def _kept(self, shape):
        return self._with_spatial(shape, (1,) * self.rank)

    def forward(self, x):
        x = self._input(x)
        s = self._saved
        s.x = x
        if x.size == 0:
            return np.zeros(self.output_shape(x.shape), dtype=x.dtype)
        x4 = x.reshape(self._shape4(x.shape))
        sizes4 = self._spatial(x4.shape)
        if self._max:
            y, s.extra = max_pool2d(x4, kernel=sizes4, stride=sizes4, layout=self._layout)
        else:
            y = adaptive_avg_pool2d(x4, (1, 1), layout=self._layout)
        return y.reshape(self.output_shape(x.shape))

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        x = s.x
        dy = as_grad(dy, x.dtype, self, self.output_shape(x.shape))
        if x.size == 0:
            return np.zeros_like(x)
        shape4 = self._shape4(x.shape)
        dy4 = dy.reshape(self._shape4(self._kept(x.shape)))
        if self._max:
            dx = max_pool2d_backward(dy4, s.extra, shape4, layout=self._layout)
        else:
            dx = adaptive_avg_pool2d_backward(dy4, shape4, layout=self._layout)
        return dx.reshape(x.shape)

    def plan_step(self, input_shape=None):
        """A pooling step to one cell, then (without keepdims) a flatten to (C,)."""
        if input_shape is None or any(n is None for n in self._spatial(input_shape)):
            return None
        kh, kw = _window.as_2d(self._spatial(input_shape), self.rank, 1)
        layout = self._layout
        if self._max:
            pool = {"kind": "max_pool2d", "params": {},
                    "attrs": {"kernel_h": kh, "kernel_w": kw, "stride_h": kh, "stride_w": kw, "pad_top": 0,
                              "pad_bottom": 0, "pad_left": 0, "pad_right": 0, "dilation_h": 1, "dilation_w": 1,
                              "ceil_mode": False, "layout": layout}}
        else:
            pool = {"kind": "adaptive_avg_pool2d", "params": {}, "attrs": {"out_h": 1, "out_w": 1, "layout": layout}}
        if self.keepdims:
            return pool
        return [pool, {"kind": "flatten", "params": {}, "attrs": {"start_dim": 1, "end_dim": -1}}]

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "data_format": self.data_format,
                                "keepdims": self.keepdims})

    def extra_repr(self):
        s = "" if self.channels_last else "data_format='channels_first'"
        return s + (", keepdims=True" if s and self.keepdims else "keepdims=True" if self.keepdims else "")


class GlobalAveragePooling2D(_GlobalPool):
    r"""Keras's `GlobalAveragePooling2D()`: the mean of each channel over H and W, (N, C) out.

    Example:
        >>> GlobalAveragePooling2D()(np.ones((2, 5, 5, 3), dtype=np.float32)).shape
        (2, 3)
    """


class GlobalAveragePooling1D(_GlobalPool):
    r"""Keras's `GlobalAveragePooling1D()`: the mean of each channel over the steps, (N, C) out.

    Example:
        >>> GlobalAveragePooling1D()(np.ones((2, 10, 3), dtype=np.float32)).shape
        (2, 3)
    """

    rank = 1


class GlobalMaxPooling2D(_GlobalPool):
    r"""Keras's `GlobalMaxPooling2D()`: the maximum of each channel over H and W, (N, C) out.

    Example:
        >>> GlobalMaxPooling2D()(np.ones((2, 5, 5, 3), dtype=np.float32)).shape
        (2, 3)
    """

    _max = True


class GlobalMaxPooling1D(_GlobalPool):
    r"""Keras's `GlobalMaxPooling1D()`: the maximum of each channel over the steps, (N, C) out.

    Example:
        >>> GlobalMaxPooling1D()(np.ones((2, 10, 3), dtype=np.float32)).shape
        (2, 3)
    """

    rank = 1
    _max = True


def _scalar(values):
    # PyTorch prints a pooling layer's uniform sizes as one int.
    return values[0] if len(set(values)) == 1 else values


_registry.register(MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d,
                   MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                   GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D)

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "AveragePooling1D",
           "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "MaxPool1d", "MaxPool2d", "MaxPooling1D", "MaxPooling2D"]
