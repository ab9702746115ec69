"""The native kernels, one Python function each, mirrored name for name by ``lamina.reference``.

This module turns what a user passes into what the kernels take: array-likes become arrays,
integer inputs are cast to the op's float dtype, non-contiguous inputs are copied to contiguous
ones (GEMM operands excepted: the engine reads any strides). Arrays updated in place (``c``,
``dW``, ``db``, parameters and optimizer state) are never copied: they must already be writable,
C-contiguous float arrays of the right dtype, or the call raises. The same checks as the
reference (``lamina._checks``) run first, so both reject bad input with the same message.
"""

import numpy as np

from . import _native
from ._checks import (
    OP_NAMES,
    as_array,
    check_activation,
    check_adam_hyper,
    check_labels,
    check_ndim,
    check_nonempty,
    check_output,
    check_sgd_hyper,
    check_shape,
    check_unit_interval,
)

__all__ = list(OP_NAMES)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float(op, name, x, dtype=None, contiguous=True):
    """x as a float32/float64 array: integers (and float16) are cast to ``dtype`` (default float32)."""
    arr = as_array(op, name, x)
    if arr.dtype not in _FLOATS:
        arr = arr.astype(dtype if dtype is not None else np.float32)
    return _contiguous(arr) if contiguous else arr


def _contiguous(arr, dtype=None):
    """arr (cast to dtype) as a C-contiguous array; unlike np.ascontiguousarray, 0-d stays 0-d."""
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _inplace(op, name, arr, shape=None, dtype=None):
    """An array the kernel writes: the caller's own array, checked, never copied."""
    check_output(op, name, arr)
    if shape is not None:
        check_shape(op, name, arr, shape)
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but must be {dtype} (it is updated in place)")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (it is updated in place)")
    return arr


# ---------------------------------------------------------------------------------------------
# Matrix products


def matmul(a, b):
    r"""Matrix product :math:`C = A B` on the packed GEMM engine (any strides, no copies).

    Shape: a :math:`(M, K)`, b :math:`(K, N)` -> :math:`(M, N)`.
    """
    return gemm(a, b)


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, activation=None):
    r"""General matrix product with a fused epilogue.

    .. math::
        C = \mathrm{act}(\alpha \, \mathrm{op}(A) \, \mathrm{op}(B) + \beta C + \mathrm{bias})

    Args:
        a, b: operands; transposed and strided views are read in place.
        c: None for a new array (beta ignored), or an array overwritten in place; beta=1 accumulates.
        trans_a, trans_b: use the transpose of a or b.
        alpha, beta: scalars; beta = 0 means c is not read.
        bias: (N,) added to every row, or None.
        activation: None, "relu", "sigmoid" or "tanh", applied last.

    Shape: op(a) :math:`(M, K)`, op(b) :math:`(K, N)`, c :math:`(M, N)`, bias :math:`(N,)`.

    Example::

        >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), bias=np.ones(4, np.float32))[0]
        array([4., 4., 4., 4.], dtype=float32)
    """
    op = "gemm"
    check_activation(op, activation)
    a = _float(op, "a", a, contiguous=False)
    b = _float(op, "b", b, a.dtype, contiguous=False)
    check_ndim(op, "a", a, 2, "(K, M)" if trans_a else "(M, K)")
    check_ndim(op, "b", b, 2, "(N, K)" if trans_b else "(K, N)")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    m, k = opa.shape
    if opb.shape[0] != k:
        expected = f"(N, {k})" if trans_b else f"({k}, N)"
        raise ValueError(
            f"gemm: b has shape {b.shape}, expected {expected} (trans_b={trans_b}) to match a of shape "
            f"{a.shape} (trans_a={trans_a})"
        )
    n = opb.shape[1]
    if c is None:
        c = np.empty((m, n), dtype=a.dtype)
        beta = 0.0
    else:
        _inplace(op, "c", c, (m, n), a.dtype)
    if bias is not None:
        bias = _float(op, "bias", bias, a.dtype)
        check_shape(op, "bias", bias, (n,), "(one value per column of C)")
    _native.gemm(c, opa, opb, bias, float(alpha), float(beta), activation)
    return c


def linear(x, W, b=None, activation=None):
    r"""Fully connected layer with a fused epilogue: :math:`y = \mathrm{act}(x W^T + b)`.

    Args:
        x: input batch (integers are cast to W's dtype).
        W: weight, one row per output feature.
        b: bias or None.
        activation: None, "relu", "sigmoid" or "tanh", applied in the GEMM's write-back.

    Shape: x :math:`(B, in)`, W :math:`(out, in)`, b :math:`(out,)` -> :math:`(B, out)`.
    """
    op = "linear"
    check_activation(op, activation)
    W = _float(op, "W", W)
    x = _float(op, "x", x, W.dtype)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"linear: W has shape {W.shape}, expected (out_features, {x.shape[1]}) to match x of shape {x.shape}"
        )
    if b is not None:
        b = _float(op, "b", b, W.dtype)
        check_shape(op, "b", b, (W.shape[0],), "(out_features,)")
    return _native.linear(x, W, b, activation)


def linear_backward(dy, x, W, dW=None, db=None, need_dx=True):
    r"""Gradients of :math:`y = x W^T + b`: :math:`dx = dy W`, :math:`dW \mathrel{+}= dy^T x`,
    :math:`db \mathrel{+}= \sum_{batch} dy` (each column summed in row order).

    Args:
        dy: gradient with respect to the pre-activation output.
        x, W: the layer's input and weight.
        dW: None for a fresh array, or an array accumulated into in place.
        db: None for a fresh array, an array accumulated into in place, or False to skip it.
        need_dx: when False, dx is not computed (first layer) and returned as None.

    Shape: dy :math:`(B, out)`, x :math:`(B, in)`, W :math:`(out, in)`.
    Returns (dx, dW, db).
    """
    op = "linear_backward"
    W = _float(op, "W", W)
    x = _float(op, "x", x, W.dtype)
    dy = _float(op, "dy", dy, W.dtype)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    batch, n_in = x.shape
    n_out = W.shape[0]
    check_shape(op, "W", W, (n_out, n_in), f"to match x of shape {x.shape}")
    check_shape(op, "dy", dy, (batch, n_out), f"(batch, out_features) for x of shape {x.shape} and W of shape {W.shape}")
    dW = np.zeros_like(W) if dW is None else _inplace(op, "dW", dW, W.shape, W.dtype)
    if db is False:
        db = None
    elif db is None:
        db = np.zeros(n_out, dtype=W.dtype)
    else:
        _inplace(op, "db", db, (n_out,), W.dtype)
    dx = _native.linear_backward(dy, x, W, dW, db, bool(need_dx))
    return dx, dW, db


# ---------------------------------------------------------------------------------------------
# Activations: forward from x, backward from the saved output y.


def _activation(kind, x):
    x = _float(kind, "x", x)
    if kind == "softmax":
        check_ndim(kind, "x", x, 2, "(batch, classes)")
    return _native.activation(x, kind)


def _activation_backward(kind, dy, y):
    op = kind + "_backward"
    y = _float(op, "y", y)
    dy = _float(op, "dy", dy, y.dtype)
    check_shape(op, "dy", dy, y.shape, "(the shape of y)")
    if kind == "softmax":
        check_ndim(op, "y", y, 2, "(batch, classes)")
    return _native.activation_backward(dy, y, kind)


def relu(x):
    r""":math:`y = \max(x, 0)`, elementwise (NaN propagates)."""
    return _activation("relu", x)


def relu_backward(dy, y):
    r""":math:`dx = dy \cdot [y > 0]`."""
    return _activation_backward("relu", dy, y)


def sigmoid(x):
    r""":math:`y = 1 / (1 + e^{-x})`, elementwise."""
    return _activation("sigmoid", x)


def sigmoid_backward(dy, y):
    r""":math:`dx = dy \cdot y (1 - y)`."""
    return _activation_backward("sigmoid", dy, y)


def tanh(x):
    r""":math:`y = \tanh x`, elementwise."""
    return _activation("tanh", x)


def tanh_backward(dy, y):
    r""":math:`dx = dy \cdot (1 - y^2)`."""
    return _activation_backward("tanh", dy, y)


def softmax(x):
    r"""Row-wise :math:`y_{ij} = e^{x_{ij} - m_i} / \sum_k e^{x_{ik} - m_i}`, :math:`m_i = \max_k x_{ik}`.

    Shape: :math:`(B, C)` -> :math:`(B, C)`.
    """
    return _activation("softmax", x)


def softmax_backward(dy, y):
    r""":math:`dx = y \odot (dy - \sum_j dy_j y_j)` per row, O(C) from the saved output."""
    return _activation_backward("softmax", dy, y)


# ---------------------------------------------------------------------------------------------
# Losses: (mean loss as a Python float, gradient with respect to the input), fused in one pass.


def cross_entropy(logits, target):
    r"""Mean softmax cross-entropy from logits and its gradient :math:`(\mathrm{softmax}(z) - t) / B`.

    Args:
        logits: :math:`(B, C)` unnormalised scores.
        target: :math:`(B,)` integer labels in [0, C), or :math:`(B, C)` one-hot / probability rows.

    Returns (loss, dlogits).
    """
    op = "cross_entropy"
    z = _float(op, "logits", logits)
    check_ndim(op, "logits", z, 2, "(batch, classes)")
    check_nonempty(op, "logits", z)
    return _native.cross_entropy(z, _class_target(op, target, z))


def _class_target(op, target, z):
    """Integer labels (B,) as int64, or probability rows (B, C) in z's dtype, checked."""
    batch, classes = z.shape
    t = as_array(op, "target", target)
    if t.ndim == 1:
        check_labels(op, t, batch, classes)
        return np.ascontiguousarray(t, dtype=np.int64)
    check_shape(op, "target", t, (batch, classes), "(integer labels (B,) or probability rows (B, C))")
    t = np.ascontiguousarray(t, dtype=z.dtype)
    check_unit_interval(op, t)
    return t


def binary_cross_entropy(logits, target):
    r"""Mean binary cross-entropy from logits, stable form, and its gradient :math:`(\sigma(z) - t)/n`.

    Returns (loss, dlogits).
    """
    op = "binary_cross_entropy"
    z = _float(op, "logits", logits)
    t = _contiguous(as_array(op, "target", target), z.dtype)
    check_shape(op, "target", t, z.shape, "(the shape of logits)")
    check_nonempty(op, "logits", z)
    check_unit_interval(op, t)
    return _native.binary_cross_entropy(z, t)


def mse(pred, target):
    r"""Mean squared error :math:`\frac{1}{n}\sum (p - t)^2` and its gradient :math:`2(p - t)/n`.

    Returns (loss, dpred).
    """
    op = "mse"
    p = _float(op, "pred", pred)
    t = _contiguous(as_array(op, "target", target), p.dtype)
    check_shape(op, "target", t, p.shape, "(the shape of pred)")
    check_nonempty(op, "pred", p)
    return _native.mse(p, t)


def probability_cross_entropy(probs, target):
    r"""Cross-entropy of probabilities (a softmax output), as Keras's ``from_logits=False``:
    :math:`p` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`, :math:`\ell = -\frac{1}{B}\sum t \log p`,
    gradient :math:`-t / (B p)` with respect to the probabilities.

    Returns (loss, dprobs).
    """
    op = "probability_cross_entropy"
    p = _float(op, "probs", probs)
    check_ndim(op, "probs", p, 2, "(batch, classes)")
    check_nonempty(op, "probs", p)
    return _native.probability_cross_entropy(p, _class_target(op, target, p))


def probability_binary_cross_entropy(probs, target):
    r"""Binary cross-entropy of probabilities (a sigmoid output), as Keras's ``from_logits=False``:
    :math:`p` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`, gradient :math:`(p - t) / (n p (1 - p))`.

    Returns (loss, dprobs).
    """
    op = "probability_binary_cross_entropy"
    p = _float(op, "probs", probs)
    t = _contiguous(as_array(op, "target", target), p.dtype)
    check_shape(op, "target", t, p.shape, "(the shape of probs)")
    check_nonempty(op, "probs", p)
    check_unit_interval(op, t)
    return _native.probability_binary_cross_entropy(p, t)


# ---------------------------------------------------------------------------------------------
# Optimizer updates, in place, PyTorch semantics.


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    r"""One SGD step in place (``torch.optim.SGD``, dampening 0): see ``lamina.reference.sgd_step``."""
    op = "sgd_step"
    _inplace(op, "param", param)
    grad = _float(op, "grad", grad, param.dtype)
    check_shape(op, "grad", grad, param.shape, "(the shape of param)")
    check_sgd_hyper(op, lr, momentum, weight_decay, nesterov, velocity)
    if momentum != 0:
        _inplace(op, "velocity", velocity, param.shape, param.dtype)
    else:
        velocity = None
    _native.sgd_step(param, grad, velocity, float(lr), float(momentum), float(weight_decay), bool(nesterov))


def adam_step(param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    r"""One Adam step in place (``torch.optim.Adam``): see ``lamina.reference.adam_step``."""
    op = "adam_step"
    _inplace(op, "param", param)
    _inplace(op, "m", m, param.shape, param.dtype)
    _inplace(op, "v", v, param.shape, param.dtype)
    grad = _float(op, "grad", grad, param.dtype)
    check_shape(op, "grad", grad, param.shape, "(the shape of param)")
    check_adam_hyper(op, step, lr, beta1, beta2, eps, weight_decay)
    _native.adam_step(param, grad, m, v, int(step), float(lr), float(beta1), float(beta2), float(eps),
                      float(weight_decay))
