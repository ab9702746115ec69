"""Losses: each returns (loss as a Python float, gradient of the loss with respect to its input)."""
import numpy as np

from .._checks import as_array, check_labels, check_ndim, check_nonempty, check_shape, check_unit_interval
from ._core import as_f64, sigmoid_formula

__all__ = ['cross_entropy', 'binary_cross_entropy', 'mse', 'probability_cross_entropy', 'probability_binary_cross_entropy', 'nll']


def cross_entropy(logits, target):
    r"""Mean softmax cross-entropy from logits, and its gradient.

    .. math::
        \ell = -\frac{1}{B} \sum_{i} \sum_{c} t_{ic} \log \mathrm{softmax}(z)_{ic},
        \qquad \frac{\partial \ell}{\partial z} = \frac{\mathrm{softmax}(z) \cdot \textstyle\sum_c t_{ic} - t}{B}

    which is :math:`(\mathrm{softmax}(z) - t) / B` for one-hot or probability rows (rows of t
    summing to 1). Integer labels :math:`y_i` stand for one-hot rows. The log-softmax is
    :math:`z - m - \log \sum e^{z - m}` with :math:`m` the row max, finite for any finite logits.

    Args:
        logits: unnormalised scores.
        target: integer class labels in [0, C), or float one-hot / probability rows in [0, 1].

    Shape:
        - logits: :math:`(B, C)`, B >= 1
        - target: :math:`(B,)` integers or :math:`(B, C)` floats
        - Output: (loss: float, dlogits :math:`(B, C)` float64)

    Example::

        >>> loss, dz = cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
        >>> round(loss, 6), dz.shape
        (1.386294, (2, 4))
    """
    op = "cross_entropy"
    z = as_f64(op, "logits", logits)
    check_ndim(op, "logits", z, 2, "(batch, classes)")
    check_nonempty(op, "logits", z)
    batch, classes = z.shape
    t = _cross_entropy_target(op, target, batch, classes)

    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    loss = -np.sum(t * log_p) / batch
    dz = (np.exp(log_p) * t.sum(axis=1, keepdims=True) - t) / batch
    return float(loss), dz


def _cross_entropy_target(op, target, batch, classes):
    """Returns the target as a float64 (B, C) matrix of class probabilities."""
    t = as_array(op, "target", target)
    if t.ndim == 1:
        check_labels(op, t, batch, classes)
        onehot = np.zeros((batch, classes))
        onehot[np.arange(batch), t] = 1.0
        return onehot
    check_shape(op, "target", t, (batch, classes), "(integer labels (B,) or probability rows (B, C))")
    t = t.astype(np.float64, copy=False)
    check_unit_interval(op, t)
    return t


def binary_cross_entropy(logits, target):
    r"""Mean binary cross-entropy from logits, and its gradient.

    .. math::
        \ell = \frac{1}{n} \sum_j \big[\max(z_j, 0) - z_j t_j + \log(1 + e^{-|z_j|})\big],
        \qquad \frac{\partial \ell}{\partial z} = \frac{\sigma(z) - t}{n}

    The bracket equals :math:`-t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))` but never
    overflows or takes the log of 0, whatever the size of :math:`z`.

    Args:
        logits: unnormalised scores, any shape with at least one element.
        target: floats in [0, 1], same shape.

    Shape:
        - logits, target: any shape, equal; n = number of elements
        - Output: (loss: float, dlogits float64 of the same shape)

    Example::

        >>> loss, dz = binary_cross_entropy(np.zeros((2, 1)), np.ones((2, 1)))
        >>> round(loss, 6)
        0.693147
    """
    op = "binary_cross_entropy"
    z = as_f64(op, "logits", logits)
    t = as_f64(op, "target", target)
    check_shape(op, "target", t, z.shape, "(the shape of logits)")
    check_nonempty(op, "logits", z)
    check_unit_interval(op, t)
    n = z.size
    per_element = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = per_element.sum() / n
    dz = (sigmoid_formula(z) - t) / n
    return float(loss), dz


def mse(pred, target):
    r"""Mean squared error and its gradient.

    .. math::
        \ell = \frac{1}{n} \sum_j (p_j - t_j)^2, \qquad \frac{\partial \ell}{\partial p} = \frac{2 (p - t)}{n}

    Args:
        pred: predictions, any shape with at least one element.
        target: same shape.

    Shape:
        - pred, target: any shape, equal; n = number of elements
        - Output: (loss: float, dpred float64 of the same shape)

    Example::

        >>> mse(np.array([1.0, 3.0]), np.array([0.0, 0.0]))[0]
        5.0
    """
    op = "mse"
    p = as_f64(op, "pred", pred)
    t = as_f64(op, "target", target)
    check_shape(op, "target", t, p.shape, "(the shape of pred)")
    check_nonempty(op, "pred", p)
    diff = p - t
    return float(np.sum(diff * diff) / p.size), 2.0 * diff / p.size


PROBABILITY_EPS = 1e-7  # Keras's clip of probabilities before the log


def probability_cross_entropy(probs, target):
    r"""Mean cross-entropy of probabilities (a softmax output) and its gradient, as Keras computes
    ``categorical_crossentropy(from_logits=False)``.

    .. math::
        \ell = -\frac{1}{B} \sum_{i,c} t_{ic} \log \hat p_{ic}, \qquad
        \frac{\partial \ell}{\partial p} = -\frac{t}{B \hat p}, \qquad
        \hat p = \mathrm{clip}(p, 10^{-7}, 1 - 10^{-7})

    Args:
        probs: probabilities, rows summing to 1.
        target: integer labels in [0, C) or probability rows.

    Shape:
        - probs: :math:`(B, C)`, B >= 1; target: :math:`(B,)` or :math:`(B, C)`
        - Output: (loss: float, dprobs :math:`(B, C)` float64)

    Example::

        >>> round(probability_cross_entropy(np.full((1, 4), 0.25), np.array([2]))[0], 6)
        1.386294
    """
    op = "probability_cross_entropy"
    p = as_f64(op, "probs", probs)
    check_ndim(op, "probs", p, 2, "(batch, classes)")
    check_nonempty(op, "probs", p)
    batch, classes = p.shape
    t = _cross_entropy_target(op, target, batch, classes)
    p = np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    return float(-np.sum(t * np.log(p)) / batch), -t / (p * batch)


def probability_binary_cross_entropy(probs, target):
    r"""Mean binary cross-entropy of probabilities (a sigmoid output) and its gradient, as Keras's
    ``binary_crossentropy(from_logits=False)``.

    .. math::
        \ell = -\frac{1}{n} \sum_j [t_j \log \hat p_j + (1 - t_j) \log(1 - \hat p_j)], \qquad
        \frac{\partial \ell}{\partial p} = \frac{\hat p - t}{n \hat p (1 - \hat p)}

    Shape:
        - probs, target: any shape, equal; n = number of elements
        - Output: (loss: float, dprobs float64 of the same shape)

    Example::

        >>> round(probability_binary_cross_entropy(np.full(2, 0.5), np.ones(2))[0], 6)
        0.693147
    """
    op = "probability_binary_cross_entropy"
    p = as_f64(op, "probs", probs)
    t = as_f64(op, "target", target)
    check_shape(op, "target", t, p.shape, "(the shape of probs)")
    check_nonempty(op, "probs", p)
    check_unit_interval(op, t)
    p = np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    n = p.size
    loss = -np.sum(t * np.log(p) + (1.0 - t) * np.log1p(-p)) / n
    return float(loss), (p - t) / (n * p * (1.0 - p))




def nll(logp, target):
    r"""Mean negative log-likelihood of class labels (PyTorch's ``NLLLoss``), and its gradient.

    .. math::
        \ell = -\frac{1}{B} \sum_i y_{i, t_i}, \qquad \frac{\partial \ell}{\partial y} = -\frac{\mathrm{onehot}(t)}{B}

    Shape:
        - logp: :math:`(B, C)` log-probabilities, B >= 1
        - target: :math:`(B,)` integer labels in [0, C)
        - Output: (loss: float, dlogp :math:`(B, C)` float64)

    Example::

        >>> loss, g = nll(np.log(np.full((2, 4), 0.25)), np.array([0, 3]))
        >>> round(loss, 6)
        1.386294
    """
    op = "nll"
    z = as_f64(op, "logp", logp)
    check_ndim(op, "logp", z, 2, "(batch, classes)")
    check_nonempty(op, "logp", z)
    t = as_array(op, "target", target)
    check_ndim(op, "target", t, 1, "(batch,) class labels")
    batch, classes = z.shape
    t = check_labels(op, t, batch, classes)
    rows = np.arange(batch)
    grad = np.zeros_like(z)
    grad[rows, t] = -1.0 / batch
    return float(-z[rows, t].sum() / batch), grad
