"""Metrics that `compile(metrics=[...])` resolves by name: accuracy (categorical or binary)."""
import numpy as np

__all__ = ["accuracy"]


def accuracy(pred, target, *, binary=None, threshold=0.0):
    r"""Fraction of correct predictions.

    Categorical: :math:`\frac{1}{B} \sum_i [\arg\max_c \hat y_{ic} = y_i]`, with integer labels
    :math:`y_i` or one-hot rows (compared by their argmax). Binary: :math:`\frac{1}{n} \sum_j
    [(\hat y_j > \tau) = (t_j > 0.5)]` over every element, with :math:`\tau = 0` for logits and
    0.5 for sigmoid probabilities.

    Args:
        pred: model outputs (logits or probabilities).
        target: integer labels, one-hot rows, or 0/1 targets (binary).
        binary: force binary (True) or categorical (False); None picks binary when there is one
            output column.
        threshold: decision threshold :math:`\tau` for binary accuracy.

    Shape:
        - pred: :math:`(B, C)` or :math:`(B,)`
        - target: :math:`(B,)` labels, :math:`(B, C)` one-hot, or the shape of pred (binary)
        - Output: float in [0, 1]

    Example::

        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.size == 0:
        raise ValueError(f"accuracy: empty prediction of shape {pred.shape}")
    if pred.shape[:1] != target.shape[:1]:
        raise ValueError(f"accuracy: prediction shape {pred.shape} and target shape {target.shape} differ in batch size")
    if binary is None:
        binary = pred.ndim == 1 or pred.shape[1] == 1
    if binary:
        if target.size != pred.size:
            raise ValueError(f"accuracy: binary targets of shape {target.shape} do not match predictions {pred.shape}")
        return float(np.mean((pred.reshape(-1) > threshold) == (target.reshape(-1) > 0.5)))
    predicted = pred.argmax(axis=1)
    if target.ndim == 1:
        labels = target
    elif target.shape == pred.shape:
        labels = target.argmax(axis=1)
    else:
        raise ValueError(f"accuracy: target shape {target.shape} is neither labels ({pred.shape[0]},) nor one-hot {pred.shape}")
    return float(np.mean(predicted == labels))
