"""Losses: (mean loss as a Python float, gradient with respect to the input), fused in one pass."""
import numpy as np
import numpy.typing as npt

from .. import _native
from .._checks import as_array, check_labels, check_ndim, check_nonempty, check_shape, check_unit_interval
from ._core import Array, as_contiguous, as_float

__all__ = ['cross_entropy', 'binary_cross_entropy', 'mse', 'probability_cross_entropy', 'probability_binary_cross_entropy', 'nll']


def cross_entropy(logits: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Mean softmax cross-entropy from logits and its gradient :math:`(\mathrm{softmax}(z) - t) / B`.

    Args:
        logits: :math:`(B, C)` unnormalised scores.
        target: :math:`(B,)` integer labels in [0, C), or :math:`(B, C)` one-hot / probability rows.

    Returns (loss, dlogits).
    """
    op = "cross_entropy"
    z = as_float(op, "logits", logits)
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


def binary_cross_entropy(logits: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Mean binary cross-entropy from logits, stable form, and its gradient :math:`(\sigma(z) - t)/n`.

    Returns (loss, dlogits).
    """
    op = "binary_cross_entropy"
    z = as_float(op, "logits", logits)
    t = as_contiguous(as_array(op, "target", target), z.dtype)
    check_shape(op, "target", t, z.shape, "(the shape of logits)")
    check_nonempty(op, "logits", z)
    check_unit_interval(op, t)
    return _native.binary_cross_entropy(z, t)


def mse(pred: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Mean squared error :math:`\frac{1}{n}\sum (p - t)^2` and its gradient :math:`2(p - t)/n`.

    Returns (loss, dpred).
    """
    op = "mse"
    p = as_float(op, "pred", pred)
    t = as_contiguous(as_array(op, "target", target), p.dtype)
    check_shape(op, "target", t, p.shape, "(the shape of pred)")
    check_nonempty(op, "pred", p)
    return _native.mse(p, t)


def probability_cross_entropy(probs: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Cross-entropy of probabilities (a softmax output), as Keras's ``from_logits=False``:
    :math:`p` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`, :math:`\ell = -\frac{1}{B}\sum t \log p`,
    gradient :math:`-t / (B p)` with respect to the probabilities.

    Returns (loss, dprobs).
    """
    op = "probability_cross_entropy"
    p = as_float(op, "probs", probs)
    check_ndim(op, "probs", p, 2, "(batch, classes)")
    check_nonempty(op, "probs", p)
    return _native.probability_cross_entropy(p, _class_target(op, target, p))


def probability_binary_cross_entropy(probs: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Binary cross-entropy of probabilities (a sigmoid output), as Keras's ``from_logits=False``:
    :math:`p` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`, gradient :math:`(p - t) / (n p (1 - p))`.

    Returns (loss, dprobs).
    """
    op = "probability_binary_cross_entropy"
    p = as_float(op, "probs", probs)
    t = as_contiguous(as_array(op, "target", target), p.dtype)
    check_shape(op, "target", t, p.shape, "(the shape of probs)")
    check_nonempty(op, "probs", p)
    check_unit_interval(op, t)
    return _native.probability_binary_cross_entropy(p, t)




def nll(logp: npt.ArrayLike, target: npt.ArrayLike) -> tuple[float, Array]:
    r"""Mean negative log-likelihood of integer labels from log-probabilities (PyTorch's NLLLoss):
    :math:`\ell = -\frac{1}{B} \sum_i y_{i, t_i}`, gradient :math:`-\mathrm{onehot}(t) / B`.

    Shape: logp :math:`(B, C)`, target :math:`(B,)` integers in [0, C). Returns (loss, dlogp).
    """
    op = "nll"
    z = as_float(op, "logp", logp)
    check_ndim(op, "logp", z, 2, "(batch, classes)")
    check_nonempty(op, "logp", z)
    t = as_array(op, "target", target)
    check_ndim(op, "target", t, 1, "(batch,) class labels")
    return _native.nll(z, check_labels(op, t, *z.shape))
