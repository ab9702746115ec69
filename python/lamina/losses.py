"""Losses: each call runs one fused native op that returns the loss and its gradient together; the
gradient is cached so `loss_fn.backward()` is free. All losses are means over the batch.

`plan_kind` names the native plan's form of a loss (see _plan.py); `plan_needs` the activation the
model's last step must end in for that form (the probability losses read a softmax or sigmoid
output).
"""
from typing import ClassVar, Optional
import numpy as np

from . import _registry, ops
from ._checks import as_input, check_labels, numeric_array


def _as_batch(x, dtype, who):
    return as_input(x, dtype, who, ndim=2)


class _Loss:
    plan_kind: ClassVar[Optional[str]] = None  # the native plan's name for this loss, None when it has none
    plan_needs: ClassVar[Optional[str]] = None  # the activation the model's output must come from for that form

    def __init__(self):
        self._grad = None

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        raise NotImplementedError

    def backward(self):
        """Return dL/dpred from the last call (same shape and dtype as pred)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._grad

    def get_config(self):
        return {"class": type(self).__name__}

    def __repr__(self):
        return f"{type(self).__name__}()"


def _pred_and_target(pred, target, who):
    """Check an elementwise loss's inputs; returns (pred 2-D, target 2-D, original pred shape).

    A (B,) target next to a (B, 1) prediction is accepted (the usual regression layout) rather than
    broadcast to (B, B), the silent mistake this check exists to stop.
    """
    p = numeric_array(pred, who, "prediction")
    if p.ndim not in (1, 2):
        raise ValueError(f"{who}: expected a prediction of shape (batch,) or (batch, n), got {p.shape}")
    shape = p.shape
    if p.size == 0:
        raise ValueError(f"{who}: empty batch (prediction shape {shape}); the mean is undefined")
    p = _as_batch(p.reshape(shape[0], -1), None, who)
    t = numeric_array(target, who, "target")
    if t.shape != shape and not (len(shape) == 2 and shape[1] == 1 and t.shape == shape[:1]):
        raise ValueError(f"{who}: target has shape {t.shape}, the prediction has shape {shape}")
    t = np.ascontiguousarray(t.reshape(p.shape), dtype=p.dtype)
    return p, t, shape


def _scores_and_target(scores, target, who, what):
    """A class loss's (batch, classes) scores, at least one row, and its target as an array."""
    z = _as_batch(scores, None, who)
    if z.shape[0] == 0:
        raise ValueError(f"{who}: empty batch ({what} shape {z.shape}); the mean is undefined")
    return z, numeric_array(target, who, "target")


class CrossEntropyLoss(_Loss):
    r"""Softmax cross-entropy from logits, averaged over the batch.

    .. math:: L = -\frac{1}{B} \sum_i \sum_c t_{ic} \log \mathrm{softmax}(z_i)_c,
              \quad \frac{\partial L}{\partial z} = \frac{\mathrm{softmax}(z) - t}{B}

    Targets are class indices (t is their one-hot) or per-class probabilities. Pass raw scores: a
    model ending in a softmax layer would be normalised twice.

    Shape:
        - logits: (B, C), float32 or float64.
        - target: (B,) integer labels in [0, C) (floats with integral values are accepted), or (B, C)
          one-hot / probabilities.
        - output: Python float; `backward()` returns (B, C).

    Example:
        >>> loss_fn = CrossEntropyLoss()
        >>> round(loss_fn(np.zeros((2, 4)), np.array([0, 3])), 6)  # log(4)
        1.386294
        >>> loss_fn.backward().shape
        (2, 4)
    """

    plan_kind = "cross_entropy"

    def forward(self, logits, target):
        who = "CrossEntropyLoss"
        z, t = _scores_and_target(logits, target, who, "logits")
        if t.ndim == 1:
            t = check_labels(who, t, *z.shape, allow_float=True)
        elif t.ndim == 2:
            if t.shape != z.shape:
                raise ValueError(f"{who}: target has shape {t.shape}, logits have shape {z.shape}")
            t = np.ascontiguousarray(t, dtype=z.dtype)
        else:
            raise ValueError(f"{who}: target must be (batch,) labels or (batch, classes) "
                             f"probabilities, got shape {t.shape}")
        loss, grad = ops.cross_entropy(z, t)
        self._grad = grad
        return float(loss)


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy from logits, averaged over all n elements (numerically stable form).

    .. math:: L = \frac{1}{n} \sum \left[\max(z, 0) - z t + \log(1 + e^{-|z|})\right],
              \quad \frac{\partial L}{\partial z} = \frac{\sigma(z) - t}{n}

    Shape:
        - logits: (B,) or (B, k), float32 or float64.
        - target: same shape, values in [0, 1] (integers and bools are cast); a (B,) target next
          to (B, 1) logits is accepted.
        - output: Python float; `backward()` has the logits' shape.

    Example:
        >>> round(BCEWithLogitsLoss()(np.zeros((2, 1)), np.array([0.0, 1.0])), 6)  # log(2)
        0.693147
    """

    plan_kind = "binary_cross_entropy"

    def forward(self, logits, target):
        who = "BCEWithLogitsLoss"
        if np.asarray(target).dtype.kind == "b":
            target = np.asarray(target, dtype=np.float64)
        z, t, shape = _pred_and_target(logits, target, who)
        outside = np.flatnonzero(~((t >= 0) & (t <= 1)))
        if outside.size:
            i = int(outside[0])
            raise ValueError(f"{who}: target values must lie in [0, 1]; found {t.flat[i]} "
                             f"at flat index {i}")
        loss, grad = ops.binary_cross_entropy(z, t)
        self._grad = grad.reshape(shape)
        return float(loss)


class MSELoss(_Loss):
    r"""Mean squared error over all n elements.

    .. math:: L = \frac{1}{n} \sum (p - t)^2, \quad \frac{\partial L}{\partial p} = \frac{2 (p - t)}{n}

    Shape:
        - pred: (B,) or (B, k), float32 or float64.
        - target: same shape (a (B,) target next to a (B, 1) prediction is accepted).
        - output: Python float; `backward()` has the prediction's shape.

    Example:
        >>> MSELoss()(np.array([[1.0], [3.0]]), np.array([0.0, 0.0]))
        5.0
    """

    plan_kind = "mse"

    def forward(self, pred, target):
        p, t, shape = _pred_and_target(pred, target, "MSELoss")
        loss, grad = ops.mse(p, t)
        self._grad = grad.reshape(shape)
        return float(loss)




class NLLLoss(_Loss):
    r"""Negative log-likelihood of class labels, from log-probabilities (a `LogSoftmax` output),
    averaged over the batch; LogSoftmax followed by NLLLoss is the cross-entropy.

    .. math:: L = -\frac{1}{B} \sum_i y_{i, t_i}, \quad \frac{\partial L}{\partial y_{ic}} = -\frac{[c = t_i]}{B}

    Shape:
        - input: (B, C) log-probabilities, float32 or float64.
        - target: (B,) integer labels in [0, C) (floats with integral values are accepted).
        - output: Python float; `backward()` returns (B, C).

    Example:
        >>> round(NLLLoss()(np.log(np.full((2, 4), 0.25)), np.array([0, 3])), 6)  # log(4)
        1.386294
    """

    plan_kind = "nll"

    def forward(self, logp, target):
        who = "NLLLoss"
        z, t = _scores_and_target(logp, target, who, "input")
        if t.ndim != 1:
            raise ValueError(f"{who}: target must be (batch,) class labels, got shape {t.shape}")
        loss, grad = ops.nll(z, check_labels(who, t, *z.shape, allow_float=True))
        self._grad = grad
        return float(loss)


# ---------------------------------------------------------------------------------------------
# Keras's cross-entropies on probabilities (from_logits=False), for models whose last layer
# already applies softmax or sigmoid; `compile` picks them for a named loss.


class CategoricalCrossEntropyOnProbabilities(_Loss):
    r"""Keras's ``(sparse_)categorical_crossentropy`` on a softmax output (``from_logits=False``).

    :math:`\ell = -\frac{1}{B} \sum_i \sum_c t_{ic} \log p_{ic}`, :math:`\partial \ell / \partial p = -t / (B p)`
    (``ops.probability_cross_entropy``, p clipped as Keras does); through the softmax's backward
    this is :math:`(p - t) / B`, the usual logits gradient.
    """

    plan_kind = "probability_cross_entropy"
    plan_needs = "softmax"

    def forward(self, pred, target):
        who = "cross-entropy"
        p = _as_batch(pred, None, who)
        t = numeric_array(target, who, "target")
        if t.ndim == 1:
            t = check_labels(who, t, *p.shape, allow_float=True)
        elif t.shape != p.shape:
            raise ValueError(f"{who}: target shape {t.shape} does not match prediction shape {p.shape}")
        loss, self._grad = ops.probability_cross_entropy(p, t)
        return float(loss)

    def __repr__(self):
        return "CrossEntropy(from probabilities)"


class BinaryCrossEntropyOnProbabilities(_Loss):
    r"""Keras's ``binary_crossentropy`` on a sigmoid output (``from_logits=False``).

    :math:`\ell = -\frac{1}{n} \sum_j [t_j \log p_j + (1 - t_j) \log (1 - p_j)]`,
    :math:`\partial \ell / \partial p = (p - t) / (n p (1 - p))` (``ops.probability_binary_cross_entropy``).
    """

    plan_kind = "probability_binary_cross_entropy"
    plan_needs = "sigmoid"

    def forward(self, pred, target):
        p = np.asarray(pred)
        t = np.asarray(target, dtype=p.dtype).reshape(p.shape)
        loss, self._grad = ops.probability_binary_cross_entropy(p, t)
        return float(loss)

    def __repr__(self):
        return "BinaryCrossEntropy(from probabilities)"


_registry.register_loss(CrossEntropyLoss, BCEWithLogitsLoss, MSELoss, NLLLoss)


loss_from_config = _registry.loss_from_config
