"""2-D convolution in float64 NumPy, forward and backward: one einsum per kernel tap over a
strided view of the zero-padded input. Worked in channels_first; channels_last is transposed to
it and back (the reference is the spec, so clarity wins over copies)."""

import numpy as np

from .._checks import check_conv_activation, check_number, conv2d_geometry, conv2d_output_shape, check_output
from ._core import apply_activation, as_f64

__all__ = ['conv2d', 'conv2d_backward']

def _to_nchw(x, w, layout):
    """x as (N, C, H, W) and w as (Cout, C/groups, kh, kw), from either layout."""
    if layout == "channels_last":
        return x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    return x, w


def _tap(a, g, i, j):
    """The view of padded a under tap (i, j): a[:, :, i*dh + sh*h, j*dw + sw*w] for h < Ho, w < Wo."""
    (sh, sw), (dh, dw) = g["stride"], g["dilation"]
    return a[:, :, i * dh: i * dh + sh * (g["Ho"] - 1) + 1: sh, j * dw: j * dw + sw * (g["Wo"] - 1) + 1: sw]


def conv2d(x, weight, bias=None, *, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
           layout="channels_first", activation=None, negative_slope=0.01):
    r"""2-D convolution (cross-correlation), PyTorch's arithmetic:

    .. math::
        y[n, o, h, w] = \mathrm{act}\Big(b[o] + \sum_{c, i, j} W[o, c, i, j]\,
            x_{pad}[n, g(o) C_g + c, s_h h + d_h i, s_w w + d_w j]\Big)

    with :math:`x_{pad}` x padded with zeros by (top, bottom, left, right) and g(o) the group of o.

    Args:
        x, weight, bias: (N, C, H, W), (Cout, C/groups, kh, kw), (Cout,) for channels_first;
            (N, H, W, C), (kh, kw, C/groups, Cout) for channels_last.
        stride, padding, dilation, groups, layout, activation, negative_slope: as lamina.ops.conv2d.

    Example::

        >>> conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))).tolist()
        [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    op = "conv2d"
    activation = check_conv_activation(op, activation)
    if activation == "leaky_relu":
        check_number(negative_slope, f"{op}: negative_slope", low=-np.inf)
    x = as_f64(op, "x", x)
    weight = as_f64(op, "weight", weight)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups, layout)
    xc, wc = _to_nchw(x, weight, layout)
    top, bottom, left, right = g["padding"]
    xp = np.pad(xc, ((0, 0), (0, 0), (top, bottom), (left, right)))
    G, Cg, Cog = g["groups"], g["C"] // g["groups"], g["Cout"] // g["groups"]
    y = np.zeros((g["N"], g["Cout"], g["Ho"], g["Wo"]))
    for k in range(G):
        xs = xp[:, k * Cg:(k + 1) * Cg]
        for i in range(g["KH"]):
            for j in range(g["KW"]):
                y[:, k * Cog:(k + 1) * Cog] += np.einsum("nchw,oc->nohw", _tap(xs, g, i, j),
                                                         wc[k * Cog:(k + 1) * Cog, :, i, j])
    if bias is not None:
        bias = as_f64(op, "bias", bias)
        if bias.shape != (g["Cout"],):
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({g['Cout']},)")
        y += bias[None, :, None, None]
    if layout == "channels_last":
        y = y.transpose(0, 2, 3, 1)
    return apply_activation(np.ascontiguousarray(y), activation, negative_slope)


def conv2d_backward(dy, x, weight, *, stride, padding, dilation, groups, layout, dW=None, db=None,
                    need_dx=True):
    r"""Gradients of :func:`conv2d` from dy, the gradient of the pre-activation output:

    .. math::
        dx_{pad}[n, c, s_h h + d_h i, s_w w + d_w j] \mathrel{+}= \sum_o W[o, c, i, j]\, dy[n, o, h, w],
        \quad dW[o, c, i, j] \mathrel{+}= \sum_{n, h, w} dy[n, o, h, w]\, x_{pad}[n, c, s_h h + d_h i, s_w w + d_w j],
        \quad db[o] \mathrel{+}= \sum_{n, h, w} dy[n, o, h, w]

    (per group), dx the interior of :math:`dx_{pad}`. dW, db: None -> fresh, an array -> accumulated
    in place, db=False -> skipped (None). need_dx=False -> dx is None. Returns (dx, dW, db).
    """
    op = "conv2d_backward"
    x = as_f64(op, "x", x)
    weight = as_f64(op, "weight", weight)
    dy = as_f64(op, "dy", dy)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups, layout)
    y_shape = conv2d_output_shape(g)
    if dy.shape != y_shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected {y_shape} (the output of x "
                         f"{x.shape} and weight {weight.shape})")
    for name, a, shape in (("dW", dW, weight.shape), ("db", db, (g["Cout"],))):
        if a is not None and a is not False:
            check_output(op, name, a)
            if a.shape != shape:
                raise ValueError(f"{op}: {name} has shape {a.shape}, expected {shape}")
    xc, wc = _to_nchw(x, weight, layout)
    dyc = dy.transpose(0, 3, 1, 2) if layout == "channels_last" else dy
    top, bottom, left, right = g["padding"]
    xp = np.pad(xc, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dxp = np.zeros_like(xp)
    dwc = np.zeros_like(wc)
    G, Cg, Cog = g["groups"], g["C"] // g["groups"], g["Cout"] // g["groups"]
    for k in range(G):
        xs, dxs = xp[:, k * Cg:(k + 1) * Cg], dxp[:, k * Cg:(k + 1) * Cg]
        dys = dyc[:, k * Cog:(k + 1) * Cog]
        for i in range(g["KH"]):
            for j in range(g["KW"]):
                _tap(dxs, g, i, j)[...] += np.einsum("nohw,oc->nchw", dys, wc[k * Cog:(k + 1) * Cog, :, i, j])
                dwc[k * Cog:(k + 1) * Cog, :, i, j] += np.einsum("nohw,nchw->oc", dys, _tap(xs, g, i, j))
    dx = None
    if need_dx:
        dx = dxp[:, :, top:top + g["H"], left:left + g["W"]]
        dx = np.ascontiguousarray(dx.transpose(0, 2, 3, 1) if layout == "channels_last" else dx)
    grad_w = dwc.transpose(2, 3, 1, 0) if layout == "channels_last" else dwc
    if dW is None:
        dW = np.ascontiguousarray(grad_w)
    else:
        dW += grad_w
    grad_b = dyc.sum(axis=(0, 2, 3))
    if db is False:
        db = None
    elif db is None:
        db = grad_b
    else:
        db += grad_b
    return dx, dW, db
