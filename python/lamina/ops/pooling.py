"""2-D pooling kernels: max (with the argmax PyTorch returns), average (PyTorch's divisor rules)
and adaptive average, forward and backward, on (N, C, H, W) channels_first or (N, H, W, C)
channels_last arrays, both native. 1-D pooling is 2-D pooling with H = 1."""
import numpy as np

from .. import _native
from .._checks import (check_divisor_override, check_flag, check_int_tuple, check_output_size, check_pool2d,
                       pool_plane)
from ._core import as_float

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward"]


def _x_shape(op, x_shape, layout):
    shape = check_int_tuple(op, "x_shape", tuple(x_shape) if isinstance(x_shape, (tuple, list)) else x_shape, 4, 0)
    pool_plane(op, "x_shape", shape, layout)
    return shape


def max_pool2d(x, *, kernel, stride, padding=(0, 0, 0, 0), dilation=(1, 1), ceil_mode=False,
               layout="channels_first"):
    r"""Max pooling: :math:`y_{nc,ij} = \max_{(p, q) \in \mathrm{window}(i, j)} x_{nc,pq}` over the
    window cells inside the input (padded cells never win).

    Args:
        x: input (integers are cast to float32).
        kernel, stride, dilation: (h, w) tuples of ints.
        padding: (top, bottom, left, right).
        ceil_mode: PyTorch's ceil rule for the output size.
        layout: "channels_first" (N, C, H, W) or "channels_last" (N, H, W, C).

    Returns (y, indices): indices (int64, y's shape) holds the flat index h*W + w of each winning
    cell in x's (H, W) plane, PyTorch's return_indices convention in both layouts. Ties go to the
    first cell in row-major window order; a NaN wins (the window's last NaN), as in PyTorch.
    """
    op = "max_pool2d"
    x = as_float(op, "x", x)
    check_pool2d(op, x.shape, layout, kernel, stride, padding, dilation, ceil_mode)
    return _native.max_pool2d(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), bool(ceil_mode),
                              layout)


def max_pool2d_backward(dy, indices, x_shape, *, layout="channels_first"):
    r"""Gradient of max pooling: zeros of x_shape, with each :math:`dy_o` added at
    :math:`\mathrm{indices}_o` of its plane (windows that overlap add up).

    Shape: dy and indices (N, C, Ho, Wo) or (N, Ho, Wo, C); returns dx of x_shape.
    """
    op = "max_pool2d_backward"
    x_shape = _x_shape(op, x_shape, layout)
    dy = as_float(op, "dy", dy)
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {indices.dtype}")
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    return _native.max_pool2d_backward(dy, indices, x_shape, layout)


def avg_pool2d(x, *, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None, layout="channels_first"):
    r"""Average pooling: :math:`y_{nc,ij} = \frac{1}{d_{ij}} \sum_{(p, q) \in \mathrm{window}(i, j)} x_{nc,pq}`.

    The divisor is PyTorch's: with hstart = i*sh - top, hend = min(hstart + kh, H + bottom) (and
    the columns alike), the padded window's area (hend - hstart)(wend - wstart) when
    count_include_pad, else the number of its cells inside the input; divisor_override replaces
    both. Keras's 'same' average is count_include_pad=False with the padding Keras computes.

    Shape: as max_pool2d; returns y.
    """
    op = "avg_pool2d"
    x = as_float(op, "x", x)
    check_pool2d(op, x.shape, layout, kernel, stride, padding, (1, 1), ceil_mode)
    check_flag(count_include_pad, f"{op}: count_include_pad")
    divisor = check_divisor_override(op, divisor_override)
    return _native.avg_pool2d(x, tuple(kernel), tuple(stride), tuple(padding), bool(ceil_mode),
                              bool(count_include_pad), divisor, layout)


def avg_pool2d_backward(dy, x_shape, *, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False,
                        count_include_pad=True, divisor_override=None, layout="channels_first"):
    r"""Gradient of average pooling: each :math:`dy_{ij} / d_{ij}` added to every input cell of
    its window."""
    op = "avg_pool2d_backward"
    x_shape = _x_shape(op, x_shape, layout)
    check_pool2d(op, x_shape, layout, kernel, stride, padding, (1, 1), ceil_mode)
    check_flag(count_include_pad, f"{op}: count_include_pad")
    divisor = check_divisor_override(op, divisor_override)
    dy = as_float(op, "dy", dy)
    return _native.avg_pool2d_backward(dy, x_shape, tuple(kernel), tuple(stride), tuple(padding), bool(ceil_mode),
                                       bool(count_include_pad), divisor, layout)


def adaptive_avg_pool2d(x, output_size, *, layout="channels_first"):
    r"""Adaptive average pooling to output_size (Ho, Wo): cell (i, j) averages rows
    :math:`\lfloor iH/H_o \rfloor .. \lceil (i+1)H/H_o \rceil - 1` and the columns alike (PyTorch)."""
    op = "adaptive_avg_pool2d"
    x = as_float(op, "x", x)
    n, c, h, w = pool_plane(op, "x", x.shape, layout)
    output_size = check_output_size(op, output_size)
    if h < 1 or w < 1:
        raise ValueError(f"{op}: input height and width must be >= 1, got {h} x {w}")
    return _native.adaptive_avg_pool2d(x, output_size, layout)


def adaptive_avg_pool2d_backward(dy, x_shape, *, layout="channels_first"):
    r"""Gradient of adaptive average pooling: each :math:`dy_{ij}` divided by its window's area
    and added to every input cell of the window. The output size is dy's."""
    op = "adaptive_avg_pool2d_backward"
    x_shape = _x_shape(op, x_shape, layout)
    dy = as_float(op, "dy", dy)
    return _native.adaptive_avg_pool2d_backward(dy, x_shape, layout)
