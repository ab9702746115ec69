"""Pooling in NumPy float64, one output cell at a time over explicit window cells: the
specification of lamina.ops.pooling. Both layouts are computed as channels_first views."""
import numpy as np

from .._checks import check_divisor_override, check_flag, check_int_tuple, check_output_size, check_pool2d, pool_plane
from ._core import as_f64

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward"]


def _first(a, layout):
    """a as (N, C, H, W) (a view)."""
    return a if layout == "channels_first" else a.transpose(0, 3, 1, 2)


def _back(a, layout):
    """An (N, C, H, W) array in `layout`, C-contiguous."""
    return np.ascontiguousarray(a if layout == "channels_first" else a.transpose(0, 2, 3, 1))


def _x_shape(op, x_shape, layout):
    shape = check_int_tuple(op, "x_shape", tuple(x_shape) if isinstance(x_shape, (tuple, list)) else x_shape, 4, 0)
    return shape, pool_plane(op, "x_shape", shape, layout)


def _window(o, kernel, stride, pad, dilation, size):
    """The input positions of output o's window along one axis (inside the input only)."""
    cells = (o * stride - pad + i * dilation for i in range(kernel))
    return [p for p in cells if 0 <= p < size]


def max_pool2d(x, *, kernel, stride, padding=(0, 0, 0, 0), dilation=(1, 1), ceil_mode=False,
               layout="channels_first"):
    r"""Max over each window's input cells, visited in row-major order: a cell replaces the
    running max when it is larger or NaN, so ties keep the first cell and a NaN wins. Returns
    (y, indices), indices the flat h*W + w of the winner."""
    op = "max_pool2d"
    x = as_f64(op, "x", x)
    n, c, h, w, ho, wo = check_pool2d(op, x.shape, layout, kernel, stride, padding, dilation, ceil_mode)
    xc = _first(x, layout)
    y = np.empty((n, c, ho, wo))
    indices = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        rows = _window(i, kernel[0], stride[0], padding[0], dilation[0], h)
        for j in range(wo):
            cols = _window(j, kernel[1], stride[1], padding[2], dilation[1], w)
            best = np.full((n, c), -np.inf)
            where = np.full((n, c), rows[0] * w + cols[0], dtype=np.int64)
            for p in rows:
                for q in cols:
                    v = xc[:, :, p, q]
                    take = (v > best) | np.isnan(v)
                    best = np.where(take, v, best)
                    where = np.where(take, p * w + q, where)
            y[:, :, i, j], indices[:, :, i, j] = best, where
    return _back(y, layout), _back(indices, layout)


def max_pool2d_backward(dy, indices, x_shape, *, layout="channels_first"):
    r""":math:`dx` = zeros of x_shape; :math:`dx_{nc}[\mathrm{indices}_{nc,ij}] \mathrel{+}= dy_{nc,ij}`."""
    op = "max_pool2d_backward"
    _, (n, c, h, w) = _x_shape(op, x_shape, layout)
    dy = _first(as_f64(op, "dy", dy), layout)
    idx = _first(np.asarray(indices, dtype=np.int64), layout)
    dx = np.zeros((n, c, h * w))
    for b in range(n):
        for ch in range(c):
            np.add.at(dx[b, ch], idx[b, ch].ravel(), dy[b, ch].ravel())
    return _back(dx.reshape(n, c, h, w), layout)


def _divisor(i, j, h, w, kernel, stride, padding, count_include_pad, divisor_override):
    """PyTorch's divisor of window (i, j), and its input rows and columns."""
    top, bottom, left, right = padding
    hs, ws = i * stride[0] - top, j * stride[1] - left
    he, we = min(hs + kernel[0], h + bottom), min(ws + kernel[1], w + right)
    rows, cols = range(max(hs, 0), min(he, h)), range(max(ws, 0), min(we, w))
    if divisor_override is not None:
        d = divisor_override
    elif count_include_pad:
        d = (he - hs) * (we - ws)
    else:
        d = len(rows) * len(cols)
    return d, rows, cols


def avg_pool2d(x, *, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None, layout="channels_first"):
    r""":math:`y_{ij}` = the sum of window (i, j)'s input cells / PyTorch's divisor (see
    lamina.ops.avg_pool2d)."""
    op = "avg_pool2d"
    x = as_f64(op, "x", x)
    n, c, h, w, ho, wo = check_pool2d(op, x.shape, layout, kernel, stride, padding, (1, 1), ceil_mode)
    check_flag(count_include_pad, f"{op}: count_include_pad")
    divisor_override = check_divisor_override(op, divisor_override)
    xc = _first(x, layout)
    y = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            d, rows, cols = _divisor(i, j, h, w, kernel, stride, padding, count_include_pad, divisor_override)
            y[:, :, i, j] = xc[:, :, rows.start:rows.stop, cols.start:cols.stop].sum(axis=(2, 3)) / d
    return _back(y, layout)


def avg_pool2d_backward(dy, x_shape, *, kernel, stride, padding=(0, 0, 0, 0), ceil_mode=False,
                        count_include_pad=True, divisor_override=None, layout="channels_first"):
    r""":math:`dx` = zeros, then :math:`dy_{ij} / d_{ij}` added over window (i, j)'s input cells."""
    op = "avg_pool2d_backward"
    shape, _ = _x_shape(op, x_shape, layout)
    n, c, h, w, ho, wo = check_pool2d(op, shape, layout, kernel, stride, padding, (1, 1), ceil_mode)
    check_flag(count_include_pad, f"{op}: count_include_pad")
    divisor_override = check_divisor_override(op, divisor_override)
    dy = _first(as_f64(op, "dy", dy), layout)
    dx = np.zeros((n, c, h, w))
    for i in range(ho):
        for j in range(wo):
            d, rows, cols = _divisor(i, j, h, w, kernel, stride, padding, count_include_pad, divisor_override)
            dx[:, :, rows.start:rows.stop, cols.start:cols.stop] += (dy[:, :, i, j] / d)[:, :, None, None]
    return _back(dx, layout)


def _adaptive(o, size, out):
    return o * size // out, -(-(o + 1) * size // out)  # floor(o*size/out), ceil((o+1)*size/out)


def adaptive_avg_pool2d(x, output_size, *, layout="channels_first"):
    r"""Cell (i, j) averages rows :math:`\lfloor iH/H_o \rfloor .. \lceil (i+1)H/H_o \rceil - 1`
    and the columns alike."""
    op = "adaptive_avg_pool2d"
    x = as_f64(op, "x", x)
    n, c, h, w = pool_plane(op, "x", x.shape, layout)
    ho, wo = check_output_size(op, output_size)
    if h < 1 or w < 1:
        raise ValueError(f"{op}: input height and width must be >= 1, got {h} x {w}")
    xc = _first(x, layout)
    y = np.empty((n, c, ho, wo))
    for i in range(ho):
        h0, h1 = _adaptive(i, h, ho)
        for j in range(wo):
            w0, w1 = _adaptive(j, w, wo)
            y[:, :, i, j] = xc[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return _back(y, layout)


def adaptive_avg_pool2d_backward(dy, x_shape, *, layout="channels_first"):
    r"""Each :math:`dy_{ij}` divided by its window's area and added over the window."""
    op = "adaptive_avg_pool2d_backward"
    _, (n, c, h, w) = _x_shape(op, x_shape, layout)
    dy = _first(as_f64(op, "dy", dy), layout)
    ho, wo = dy.shape[2], dy.shape[3]
    dx = np.zeros((n, c, h, w))
    for i in range(ho):
        h0, h1 = _adaptive(i, h, ho)
        for j in range(wo):
            w0, w1 = _adaptive(j, w, wo)
            dx[:, :, h0:h1, w0:w1] += (dy[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return _back(dx, layout)
