"""2-D convolution kernels (cross-correlation, as PyTorch and Keras compute it): forward with bias
and activation fused into the write-back, and its backward, both layouts native."""
import numpy as np

from .. import _native
from .._checks import check_conv_activation, check_number, conv2d_geometry, conv2d_output_shape
from ._core import as_float, inplace

__all__ = ['conv2d', 'conv2d_backward']


def conv2d(x, weight, bias=None, *, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
           layout="channels_first", activation=None, negative_slope=0.01):
    r"""2-D convolution: :math:`y[n, o] = \mathrm{act}(b[o] + \sum_{c, i, j} w[o, c, i, j]\,
    x_{pad}[n, g c, s_h h + d_h i, s_w w + d_w j])`, run as an implicit GEMM.

    Args:
        x: input batch (integers are cast to weight's dtype).
        weight: the kernel, PyTorch's layout for channels_first, Keras's for channels_last.
        bias: (Cout,) or None.
        stride, dilation: (h, w) ints >= 1. padding: (top, bottom, left, right) zeros.
        groups: input and output channels split into this many independent groups.
        layout: "channels_first" (NCHW) or "channels_last" (NHWC).
        activation: None, "relu", "sigmoid", "tanh", "leaky_relu", "gelu" or "gelu_tanh".

    Shape:
        - channels_first: x (N, C, H, W), weight (Cout, C/groups, kh, kw) -> (N, Cout, Ho, Wo)
        - channels_last: x (N, H, W, C), weight (kh, kw, C/groups, Cout) -> (N, Ho, Wo, Cout)

    Example::

        >>> conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)).shape
        (1, 4, 3, 3)
    """
    op = "conv2d"
    activation = check_conv_activation(op, activation)
    if activation == "leaky_relu":
        check_number(negative_slope, f"{op}: negative_slope", low=-np.inf)
    weight = as_float(op, "weight", weight)
    x = as_float(op, "x", x, weight.dtype)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups, layout)
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: x has dtype {x.dtype} but weight has dtype {weight.dtype}")
    if bias is not None:
        bias = as_float(op, "bias", bias, weight.dtype)
        if bias.shape != (g["Cout"],):
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({g['Cout']},)")
        if bias.dtype != weight.dtype:
            raise TypeError(f"{op}: bias has dtype {bias.dtype} but weight has dtype {weight.dtype}")
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = g["stride"], g["padding"], g["dilation"]
    return _native.conv2d(x, weight, bias, sh, sw, pt, pb, pl, pr, dh, dw, g["groups"], layout,
                          activation, float(negative_slope))


def conv2d_backward(dy, x, weight, *, stride, padding, dilation, groups, layout, dW=None, db=None,
                    need_dx=True):
    r"""Gradients of :func:`conv2d` from ``dy``, the gradient of the pre-activation output:
    dx (a transposed convolution of dy), :math:`dW \mathrel{+}=` the correlation of x with dy,
    :math:`db \mathrel{+}= \sum_{n, h, w} dy`.

    Args:
        dy: gradient with respect to the pre-activation output, y's shape.
        x, weight: the convolution's input and weight.
        dW: None for a fresh array, or an array accumulated into in place.
        db: None for a fresh array, an array accumulated into in place, or False to skip it.
        need_dx: when False, dx is not computed and returned as None.

    Returns (dx, dW, db).
    """
    op = "conv2d_backward"
    weight = as_float(op, "weight", weight)
    x = as_float(op, "x", x, weight.dtype)
    dy = as_float(op, "dy", dy, weight.dtype)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups, layout)
    for name, a in (("x", x), ("dy", dy)):
        if a.dtype != weight.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype} but weight has dtype {weight.dtype}")
    y_shape = conv2d_output_shape(g)
    if dy.shape != y_shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected {y_shape} (the output of x "
                         f"{x.shape} and weight {weight.shape})")
    dW = np.zeros_like(weight) if dW is None else inplace(op, "dW", dW, weight.shape, weight.dtype)
    if db is False:
        db = None
    elif db is None:
        db = np.zeros(g["Cout"], dtype=weight.dtype)
    else:
        inplace(op, "db", db, (g["Cout"],), weight.dtype)
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = g["stride"], g["padding"], g["dilation"]
    dx = _native.conv2d_backward(dy, x, weight, dW, db, bool(need_dx), sh, sw, pt, pb, pl, pr,
                                 dh, dw, g["groups"], layout)
    return dx, dW, db
