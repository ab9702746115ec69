"""`keras.losses`: Keras's loss classes on lamina's losses. `from_logits=False` (Keras's default)
reads probabilities (a softmax or sigmoid output), `from_logits=True` raw scores."""
from .. import losses as _losses


def SparseCategoricalCrossentropy(from_logits=False):  # noqa: N802 (Keras's class names)
    return _losses.CrossEntropyLoss() if from_logits else _losses.CategoricalCrossEntropyOnProbabilities()


def CategoricalCrossentropy(from_logits=False):  # noqa: N802
    return _losses.CrossEntropyLoss() if from_logits else _losses.CategoricalCrossEntropyOnProbabilities()


def BinaryCrossentropy(from_logits=False):  # noqa: N802
    return _losses.BCEWithLogitsLoss() if from_logits else _losses.BinaryCrossEntropyOnProbabilities()


def MeanSquaredError():  # noqa: N802
    return _losses.MSELoss()


__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "MeanSquaredError", "SparseCategoricalCrossentropy"]
