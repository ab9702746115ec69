"""Losses: each call runs one fused native op that returns the loss and its gradient together; the
gradient is cached so `loss_fn.backward()` is free. All losses are means over the batch.
"""
from collections.abc import Mapping

import numpy as np

from . import ops
from .layers import _as_batch, _numeric_array


class _Loss:
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
    p = _numeric_array(pred, who, "prediction")
    if p.ndim not in (1, 2):
        raise ValueError(f"{who}: expected a prediction of shape (batch,) or (batch, n), got {p.shape}")
    shape = p.shape
    if p.size == 0:
        raise ValueError(f"{who}: empty batch (prediction shape {shape}); the mean is undefined")
    p = _as_batch(p.reshape(shape[0], -1), None, who)
    t = _numeric_array(target, who, "target")
    if t.shape != shape and not (len(shape) == 2 and shape[1] == 1 and t.shape == shape[:1]):
        raise ValueError(f"{who}: target has shape {t.shape}, the prediction has shape {shape}")
    t = np.ascontiguousarray(t.reshape(p.shape), dtype=p.dtype)
    return p, t, shape


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

    def forward(self, logits, target):
        who = "CrossEntropyLoss"
        z = _as_batch(logits, None, who)
        batch, classes = z.shape
        if batch == 0:
            raise ValueError(f"{who}: empty batch (logits shape {z.shape}); the mean is undefined")
        t = _numeric_array(target, who, "target")
        if t.ndim == 1:
            if t.shape[0] != batch:
                raise ValueError(f"{who}: {t.shape[0]} labels for a batch of {batch} (logits {z.shape})")
            if t.dtype.kind == "f":
                bad = np.flatnonzero(t != np.round(t))  # NaN fails this too
                if bad.size:
                    i = int(bad[0])
                    raise ValueError(f"{who}: label {t[i]} at index {i} is not an integer")
            out = np.flatnonzero((t < 0) | (t >= classes))
            if out.size:
                i = int(out[0])
                raise ValueError(f"{who}: label {t[i]} at index {i} is out of range [0, {classes}) "
                                 f"for logits of shape {z.shape}")
            t = np.ascontiguousarray(t, dtype=np.int64)
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

    def forward(self, pred, target):
        p, t, shape = _pred_and_target(pred, target, "MSELoss")
        loss, grad = ops.mse(p, t)
        self._grad = grad.reshape(shape)
        return float(loss)


_LOSS_CLASSES = {cls.__name__: cls for cls in (CrossEntropyLoss, BCEWithLogitsLoss, MSELoss)}


def loss_from_config(cfg):
    """Build a loss from `get_config()` output ({"class": name}) or from its class name.

    Example:
        >>> loss_from_config({"class": "MSELoss"})
        MSELoss()
    """
    name = cfg.get("class") if isinstance(cfg, Mapping) else cfg
    if not isinstance(name, str) or name not in _LOSS_CLASSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {sorted(_LOSS_CLASSES)}")
    if isinstance(cfg, Mapping) and set(cfg) - {"class"}:
        raise ValueError(f"unknown keys {sorted(map(str, set(cfg) - {'class'}))} in {name} config")
    return _LOSS_CLASSES[name]()
