"""`compile`: the optimizer, loss and metrics a model trains with, resolved from Keras's names
(``"adam"``, ``"sparse_categorical_crossentropy"``, ``"accuracy"``) or given as objects.
"""
from .. import _changes, losses, optim
from .metrics import accuracy

# Keras's defaults for the optimizers it lets users name by string.
_OPTIMIZER_NAMES = {
    "sgd": lambda params: optim.SGD(params, lr=0.01),
    "adam": lambda params: optim.Adam(params, lr=0.001),
}
_CROSS_ENTROPY_NAMES = ("cross_entropy", "crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy")
_BINARY_NAMES = ("binary_crossentropy", "binary_cross_entropy", "bce")
_MSE_NAMES = ("mse", "mean_squared_error")


class _Compiled:
    """What `compile` stores on a model. `optimizer` is None until the model has parameters (a named
    or Keras-style optimizer on a Keras model not built yet: `optimizer_factory` builds it then);
    the *_spec fields keep what the user passed, for save."""

    def __init__(self, optimizer, optimizer_factory, loss, loss_spec, metrics, metric_specs):
        self.optimizer = optimizer
        self.optimizer_factory = optimizer_factory
        self.loss = loss
        self.loss_spec = loss_spec
        self.metrics = metrics  # list of (name, fn(pred, target) -> float)
        self.metric_specs = metric_specs


def compile(model, optimizer, loss, metrics=None):
    """Attach an optimizer, a loss and metrics to a model, ready for `fit`, `evaluate` and `train_step`.

    Args:
        model: a lamina model (``Sequential``).
        optimizer: an optimizer object (``lm.SGD(model.parameters(), lr=0.1)``), a Keras-style
            one built without parameters (``keras.optimizers.Adam(learning_rate=1e-3)``), or
            ``"sgd"`` (lr 0.01) / ``"adam"`` (lr 0.001), Keras's defaults.
        loss: a loss object (``lm.CrossEntropyLoss()``) or a Keras name: ``"cross_entropy"``,
            ``"sparse_categorical_crossentropy"``, ``"categorical_crossentropy"``, ``"binary_crossentropy"``,
            ``"mse"``. Loss objects take logits. A named cross-entropy follows Keras: when the model
            ends in softmax (or sigmoid) it is computed on those probabilities, otherwise on logits.
        metrics: names (``"accuracy"``, alias ``"acc"``) or functions ``f(pred, target) -> float``
            (reported under ``f.__name__``). None means ``["accuracy"]`` for a classification
            loss and no metric for MSE; ``[]`` means none.

    Example::

        >>> model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    """
    if optimizer is None or loss is None:
        raise ValueError("compile: both an optimizer and a loss are required")
    loss_fn = _resolve_loss(model, loss)
    if metrics is None:
        # Accuracy means nothing for a regression loss, so MSE models get no default metric.
        metrics = [] if isinstance(loss_fn, losses.MSELoss) else ["accuracy"]
    elif isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    metric_fns = _resolve_metrics(model, loss_fn, metrics)
    name = optimizer.lower() if isinstance(optimizer, str) else None
    if isinstance(optimizer, str) or callable(getattr(optimizer, "build", None)):
        if name is not None and name not in _OPTIMIZER_NAMES:
            raise ValueError(f"compile: unknown optimizer {optimizer!r}; use one of {sorted(_OPTIMIZER_NAMES)} or an optimizer object")
        factory = _OPTIMIZER_NAMES[name] if name is not None else optimizer.build
        # A Keras model without input_shape has not all its parameters before its first call; the
        # optimizer is then created by the first train_step.
        ready = getattr(model, "built", True) and len(model.parameters()) > 0
        opt = factory(model.parameters()) if ready else None
    else:
        if not (callable(getattr(optimizer, "step", None)) and callable(getattr(optimizer, "zero_grad", None))):
            raise TypeError(f"compile: optimizer must be an optimizer object or a name, got {type(optimizer).__name__}")
        factory, opt = None, optimizer
    loss_spec = loss if isinstance(loss, str) else None
    model._compiled = _Compiled(opt, factory, loss_fn, loss_spec, metric_fns, list(metrics))
    _changes.happened()  # plans built for the previous loss and optimizer
    model.optimizer = opt
    model.loss = loss_fn
    return model


def _last_activation(model):
    """'softmax', 'sigmoid' or None: what the model's last layer applies to its output."""
    try:
        last = list(model)[-1]
    except (TypeError, IndexError):
        return None
    name = type(last).__name__.lower()
    if name in ("softmax", "sigmoid"):
        return name
    act = getattr(last, "activation", None)
    if isinstance(act, str):
        return act.lower()
    if act is not None:
        return type(act).__name__.lower()
    return None


def _resolve_loss(model, loss):
    if not isinstance(loss, str):
        if not (callable(loss) and callable(getattr(loss, "backward", None))):
            raise TypeError(f"compile: loss must be a loss object with backward() or a name, got {type(loss).__name__}")
        return loss
    name = loss.lower()
    last = _last_activation(model)
    if name in _CROSS_ENTROPY_NAMES:
        return losses.CategoricalCrossEntropyOnProbabilities() if last == "softmax" else losses.CrossEntropyLoss()
    if name in _BINARY_NAMES:
        return losses.BinaryCrossEntropyOnProbabilities() if last == "sigmoid" else losses.BCEWithLogitsLoss()
    if name in _MSE_NAMES:
        return losses.MSELoss()
    known = _CROSS_ENTROPY_NAMES + _BINARY_NAMES + _MSE_NAMES
    raise ValueError(f"compile: unknown loss {loss!r}; use a loss object or one of {list(known)}")


def _resolve_metrics(model, loss_fn, metrics):
    probabilities = _last_activation(model) in ("softmax", "sigmoid")
    threshold = 0.5 if probabilities else 0.0
    # Which accuracy: the loss says whether outputs are classes (argmax) or independent 0/1 targets.
    if isinstance(loss_fn, (losses.BCEWithLogitsLoss, losses.BinaryCrossEntropyOnProbabilities)):
        binary = True
    elif isinstance(loss_fn, (losses.CrossEntropyLoss, losses.CategoricalCrossEntropyOnProbabilities)):
        binary = False
    else:
        binary = None  # one output column: 0/1 regression; several: argmax of one-hot regression
        threshold = 0.5

    def acc(pred, target):
        return accuracy(pred, target, binary=binary, threshold=threshold)

    resolved = []
    for m in metrics:
        if isinstance(m, str):
            if m.lower() not in ("accuracy", "acc"):
                raise ValueError(f"compile: unknown metric {m!r}; use 'accuracy' or a function f(pred, target) -> float")
            resolved.append(("accuracy", acc))
        elif callable(m):
            resolved.append((getattr(m, "__name__", type(m).__name__), m))
        else:
            raise TypeError(f"compile: a metric must be a name or a function, got {type(m).__name__}")
    names = [n for n, _ in resolved]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"compile: metric names must be distinct and not 'loss', got {names}")
    return resolved


def _compiled(model, where):
    state = getattr(model, "_compiled", None)
    if state is None:
        raise RuntimeError(f"{where}: the model is not compiled; call model.compile(optimizer, loss) first")
    return state
