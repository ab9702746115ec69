"""Keras-style training for lamina models: compile, fit, evaluate, predict, train_step, the accuracy
metric, History and the callbacks (Callback, LambdaCallback, EarlyStopping).

`Sequential.compile/fit/...` call these functions with the model first; the compiled state lives on
the model as `model._compiled` (see `compile`).
"""

import math
import sys
import time
from contextlib import contextmanager

import numpy as np

from . import _changes, _plan, _random, losses, ops, optim

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "accuracy",
    "compile",
    "evaluate",
    "fit",
    "predict",
    "train_step",
]

# Keras's defaults for the optimizers it lets users name by string.
_OPTIMIZER_NAMES = {
    "sgd": lambda params: optim.SGD(params, lr=0.01),
    "adam": lambda params: optim.Adam(params, lr=0.001),
}
_CROSS_ENTROPY_NAMES = ("cross_entropy", "crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy")
_BINARY_NAMES = ("binary_crossentropy", "binary_cross_entropy", "bce")
_MSE_NAMES = ("mse", "mean_squared_error")



# ---------------------------------------------------------------------------------------------
# Losses for Keras users whose last layer already applies softmax or sigmoid.


class _CrossEntropyOnProbabilities:
    r"""Keras's ``(sparse_)categorical_crossentropy`` on a softmax output (``from_logits=False``).

    :math:`\ell = -\frac{1}{B} \sum_i \sum_c t_{ic} \log p_{ic}`, :math:`\partial \ell / \partial p = -t / (B p)`
    (``ops.probability_cross_entropy``, p clipped as Keras does); through the softmax's backward
    this is :math:`(p - t) / B`, the usual logits gradient.
    """

    def __call__(self, pred, target):
        t = _onehot(target, np.shape(pred), "cross-entropy")
        loss, self._grad = ops.probability_cross_entropy(pred, t)
        return loss

    def backward(self):
        return self._grad

    def __repr__(self):
        return "CrossEntropy(from probabilities)"


class _BinaryCrossEntropyOnProbabilities:
    r"""Keras's ``binary_crossentropy`` on a sigmoid output (``from_logits=False``).

    :math:`\ell = -\frac{1}{n} \sum_j [t_j \log p_j + (1 - t_j) \log (1 - p_j)]`,
    :math:`\partial \ell / \partial p = (p - t) / (n p (1 - p))` (``ops.probability_binary_cross_entropy``).
    """

    def __call__(self, pred, target):
        p = np.asarray(pred)
        t = np.asarray(target, dtype=p.dtype).reshape(p.shape)
        loss, self._grad = ops.probability_binary_cross_entropy(p, t)
        return loss

    def backward(self):
        return self._grad

    def __repr__(self):
        return "BinaryCrossEntropy(from probabilities)"


def _onehot(target, shape, what):
    """Class labels as int64 (float labels must be whole numbers), or probability rows as given."""
    t = np.asarray(target)
    if t.ndim == 1 and t.dtype.kind == "f" and np.array_equal(t, np.round(t)):
        t = t.astype(np.int64)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise TypeError(f"{what}: 1-D targets are class labels and must be integers, got dtype {t.dtype}")
        if t.shape[0] != shape[0] or ((t < 0) | (t >= shape[1])).any():
            raise ValueError(f"{what}: labels of shape {t.shape} must be one per row of {shape} and in [0, {shape[1]})")
        return t
    if t.shape != shape:
        raise ValueError(f"{what}: target shape {t.shape} does not match prediction shape {shape}")
    return t


# ---------------------------------------------------------------------------------------------
# Metric


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


# ---------------------------------------------------------------------------------------------
# compile


class _Compiled:
    """What `compile` stores on a model. `optimizer` is None until the model has parameters (a string
    optimizer on a Keras model not built yet); the *_spec fields keep what the user passed, for save."""

    def __init__(self, optimizer, optimizer_name, loss, loss_spec, metrics, metric_specs):
        self.optimizer = optimizer
        self.optimizer_name = optimizer_name
        self.loss = loss
        self.loss_spec = loss_spec
        self.metrics = metrics  # list of (name, fn(pred, target) -> float)
        self.metric_specs = metric_specs


def compile(model, optimizer, loss, metrics=None):
    """Attach an optimizer, a loss and metrics to a model, ready for `fit`, `evaluate` and `train_step`.

    Args:
        model: a lamina model (``Sequential``).
        optimizer: an optimizer object (``lm.SGD(model.parameters(), lr=0.1)``) or ``"sgd"``
            (lr 0.01) / ``"adam"`` (lr 0.001), Keras's defaults.
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
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name not in _OPTIMIZER_NAMES:
            raise ValueError(f"compile: unknown optimizer {optimizer!r}; use one of {sorted(_OPTIMIZER_NAMES)} or an optimizer object")
        # A Keras model without input_shape has not all its parameters before its first call; the
        # optimizer is then created by the first train_step.
        ready = getattr(model, "built", True) and len(model.parameters()) > 0
        opt = _OPTIMIZER_NAMES[name](model.parameters()) if ready else None
    else:
        if not (callable(getattr(optimizer, "step", None)) and callable(getattr(optimizer, "zero_grad", None))):
            raise TypeError(f"compile: optimizer must be an optimizer object or a name, got {type(optimizer).__name__}")
        name, opt = None, optimizer
    loss_spec = loss if isinstance(loss, str) else None
    model._compiled = _Compiled(opt, name, loss_fn, loss_spec, metric_fns, list(metrics))
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
        return _CrossEntropyOnProbabilities() if last == "softmax" else losses.CrossEntropyLoss()
    if name in _BINARY_NAMES:
        return _BinaryCrossEntropyOnProbabilities() if last == "sigmoid" else losses.BCEWithLogitsLoss()
    if name in _MSE_NAMES:
        return losses.MSELoss()
    known = _CROSS_ENTROPY_NAMES + _BINARY_NAMES + _MSE_NAMES
    raise ValueError(f"compile: unknown loss {loss!r}; use a loss object or one of {list(known)}")


def _resolve_metrics(model, loss_fn, metrics):
    probabilities = _last_activation(model) in ("softmax", "sigmoid")
    threshold = 0.5 if probabilities else 0.0
    # Which accuracy: the loss says whether outputs are classes (argmax) or independent 0/1 targets.
    if isinstance(loss_fn, (losses.BCEWithLogitsLoss, _BinaryCrossEntropyOnProbabilities)):
        binary = True
    elif isinstance(loss_fn, (losses.CrossEntropyLoss, _CrossEntropyOnProbabilities)):
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


# ---------------------------------------------------------------------------------------------
# One step


def train_step(model, xb, yb, *, return_output=False):
    """One training step on a batch: zero the gradients, forward, loss, backward, optimizer step.

    Args:
        model: a compiled model.
        xb: input batch.
        yb: targets for the batch, in the form the loss takes.
        return_output: also return the model's output for the batch (computed before the update),
            which `fit` uses for its metrics.

    Returns:
        float: the batch loss before the update (and the output, with ``return_output=True``).

    Shape:
        - xb: :math:`(B, \\text{in})`, yb: what the loss takes for a :math:`(B, \\text{out})` output

    Example::

        >>> loss = model.train_step(x[:32], y[:32])
    """
    cache = model.__dict__.get("_native_plan")
    if cache is not None and cache.changes == _changes.count and cache.train_step is not None:
        # Nothing changed since the plan was built (a compile would have counted): no more checks.
        return cache.train_step(xb, yb, return_output)
    state = _compiled(model, "train_step")
    plan = _plan.cached(model, state.loss, state.optimizer) if state.optimizer is not None else None
    if plan is not None:
        return plan.train_step(xb, yb, return_output)
    if state.optimizer is not None:
        state.optimizer._check_parameters()  # before zero_grad, which would clear a grad bound to data
    model.zero_grad()
    out = model(xb)
    loss = state.loss(out, yb)
    model.backward(state.loss.backward())
    if state.optimizer is None:
        # The first forward pass has built a lazily shaped model: its parameters exist now.
        state.optimizer = _OPTIMIZER_NAMES[state.optimizer_name](list(model.parameters()))
        model.optimizer = state.optimizer
    state.optimizer.step()
    return (loss, out) if return_output else loss


# ---------------------------------------------------------------------------------------------
# Data checks


def _model_dtype(model):
    for p in model.parameters():
        return p.data.dtype
    return np.dtype(np.float32)


def _as_inputs(model, x, where, name="x"):
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"{where}: {name} must hold integers or floats, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{where}: {name} must hold at least one sample, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=_model_dtype(model))
    _check_finite(x, where, name)
    return x


def _as_targets(model, y, n, where, name="y"):
    if y is None:
        raise ValueError(f"{where}: {name} is required (targets for every sample of x)")
    y = np.asarray(y)
    if y.dtype.kind == "b":
        y = y.astype(_model_dtype(model))
    if y.dtype.kind not in "iuf":
        raise TypeError(f"{where}: {name} must hold integers or floats, got dtype {y.dtype}")
    if y.ndim < 1 or y.shape[0] != n:
        raise ValueError(f"{where}: {name} of shape {y.shape} must have one row per sample ({n} samples in x)")
    if y.dtype.kind == "f":
        y = np.ascontiguousarray(y, dtype=_model_dtype(model))
        _check_finite(y, where, name)
    else:
        y = np.ascontiguousarray(y, dtype=np.int64)
    return y


def _check_finite(a, where, name):
    bad = ~np.isfinite(a)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{where}: {name}{list(i)} = {a[i]!r} is not finite")


def _check_batch_size(batch_size, where, allow_none):
    if batch_size is None and allow_none:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive integer, got {batch_size!r}")


def _batches(n, batch_size):
    step = n if batch_size is None else int(batch_size)
    return range(0, n, step), step


@contextmanager
def _eval_mode(model):
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


# ---------------------------------------------------------------------------------------------
# predict / evaluate


def predict(model, x, batch_size=None):
    """Model outputs for every sample, in eval mode (no activations kept for a backward pass).

    Args:
        model: a lamina model (compiling is not needed).
        x: inputs, any array-like (NumPy, lists, CPU torch tensors).
        batch_size: rows per forward pass; None runs the whole input in one pass.

    Shape:
        - x: :math:`(N, \\text{in})`
        - Output: :math:`(N, \\text{out})`

    Example::

        >>> probs = model.predict(x_test, batch_size=256)
    """
    state = getattr(model, "_compiled", None)
    plan = _plan.cached(model, state.loss, state.optimizer) if state is not None else _plan.cached(model)
    if plan is not None and batch_size is None and type(x) is np.ndarray:
        try:
            return plan.predict(x)  # checks dtype, shape and finiteness natively
        except (TypeError, ValueError):
            pass  # the path below rejects it too, in the words of the layer-by-layer path
    x = _as_inputs(model, x, "predict")
    _check_batch_size(batch_size, "predict", allow_none=True)
    starts, step = _batches(len(x), batch_size)
    with _eval_mode(model):
        outs = [np.asarray(model(x[s : s + step])) for s in starts]
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


def _evaluate_logs(model, state, x, y, batch_size):
    """{'loss': ..., metric: ...} over (x, y), each the sample-weighted mean of its batch values."""
    n = len(x)
    starts, step = _batches(n, batch_size)
    totals = dict.fromkeys(["loss"] + [name for name, _ in state.metrics], 0.0)
    with _eval_mode(model):
        for s in starts:
            xb, yb = x[s : s + step], y[s : s + step]
            out = model(xb)
            totals["loss"] += state.loss(out, yb) * len(xb)
            for name, fn in state.metrics:
                totals[name] += fn(out, yb) * len(xb)
    return {k: v / n for k, v in totals.items()}


def evaluate(model, x, y, batch_size=None, verbose=0, return_dict=False):
    """Loss and metrics of a compiled model on (x, y), in eval mode.

    Args:
        model: a compiled model.
        x, y: inputs and targets (array-likes).
        batch_size: rows per forward pass; None runs everything in one pass.
        verbose: 0 prints nothing, 1 or 2 prints one line with the results.
        return_dict: return ``{"loss": ..., "accuracy": ...}`` instead of Keras's scalar/list.

    Returns:
        The loss as a float when no metric is compiled, else ``[loss, metric1, ...]`` (Keras's
        form), or the dict with ``return_dict=True``.

    Example::

        >>> loss, acc = model.evaluate(x_test, y_test)
    """
    state = _compiled(model, "evaluate")
    x = _as_inputs(model, x, "evaluate")
    y = _as_targets(model, y, len(x), "evaluate")
    _check_batch_size(batch_size, "evaluate", allow_none=True)
    logs = _evaluate_logs(model, state, x, y, batch_size)
    if verbose:
        print(_format_logs(logs), file=sys.stdout, flush=True)
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


# ---------------------------------------------------------------------------------------------
# Callbacks


class Callback:
    """Base class of fit's callbacks; override the hooks you need.

    ``self.model`` is the model being trained and ``self.params`` holds fit's settings (epochs,
    steps, batch_size, samples, verbose). Setting ``self.model.stop_training = True`` ends the run
    after the current epoch. ``logs`` holds the epoch's results (``loss``, metrics, ``val_*``).

    Example::

        >>> class Print(lm.Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is the list of epoch losses and
    ``history.epoch`` the list of epoch indices; `fit` returns one."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """A callback made of plain functions, e.g. a per-epoch hook.

    Args:
        on_epoch_begin, on_epoch_end: ``f(epoch, logs)``.
        on_train_batch_begin, on_train_batch_end: ``f(batch, logs)``.
        on_train_begin, on_train_end: ``f(logs)``.

    Example::

        >>> hook = lm.LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
        >>> model.fit(x, y, epochs=3, callbacks=[hook])
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None):
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        for name, fn in hooks.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)


class EarlyStopping(Callback):
    r"""Stop training when a monitored value has stopped improving.

    An epoch improves when :math:`v < \text{best} - \delta` (mode "min") or :math:`v > \text{best} + \delta`
    (mode "max"). Training stops after ``patience`` epochs in a row without improvement (after the
    first such epoch when ``patience`` is 0), as in Keras.

    Args:
        monitor: the log key to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ...).
        patience: epochs without improvement tolerated before stopping.
        min_delta: the smallest change that counts as an improvement, :math:`\delta`.
        mode: "min", "max", or "auto" (max for accuracies, min otherwise).
        restore_best_weights: at the end of training, stopped early or not, put back the
            weights of the best epoch (Keras restores them only when it stops early).
        verbose: print a line when stopping.

    Example::

        >>> stop = lm.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
        >>> model.fit(x, y, epochs=100, validation_split=0.2, callbacks=[stop])
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False, verbose=0):
        super().__init__()
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a non-negative number, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if ("acc" in monitor) else "min"
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitored key {self.monitor!r} is not in the logs {sorted(logs)}"
                             " (val_* keys need validation_data or validation_split)")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping (best {self.monitor} {self.best:.4f} "
                  f"at epoch {self.best_epoch + 1})" if self.best_epoch is not None else
                  f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


# ---------------------------------------------------------------------------------------------
# fit


def _format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _stdout_is_terminal():
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):
        return False


def _progress_bar(total, epoch, epochs, verbose):
    """A tqdm bar on a terminal at verbose=1, else None (one summary line per epoch instead)."""
    if verbose != 1 or not _stdout_is_terminal():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch", file=sys.stdout, leave=True)


def fit(model, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
        verbose=1, callbacks=None, seed=None):
    """Train a compiled model on (x, y) for a number of epochs, Keras style.

    Each epoch shuffles the samples (from lamina's generator, or from ``seed``), runs
    `train_step` on each batch, then evaluates the validation data if any. After
    ``lm.manual_seed(n)`` (or with ``seed=n``) a whole run is bitwise repeatable, whatever the
    thread count.

    Args:
        model: a compiled model.
        x, y: inputs and targets (array-likes; integer labels or float targets).
        epochs: passes over the data.
        batch_size: samples per step; the last batch of an epoch may be smaller.
        validation_data: ``(x_val, y_val)`` evaluated after each epoch (``val_*`` logs).
        validation_split: fraction of (x, y), taken from the end before shuffling, held out for
            validation when ``validation_data`` is not given.
        shuffle: shuffle the training samples every epoch.
        verbose: 0 silent; 1 a progress bar per epoch on a terminal (with tqdm installed), one
            line per epoch otherwise; 2 one line per epoch.
        callbacks: list of `Callback` objects.
        seed: seed for the shuffling only; None draws from lamina's generator (``lm.manual_seed``).

    Returns:
        History: ``history.history`` maps "loss", each metric and their "val_" forms to one value
        per epoch; ``history.epoch`` lists the epochs run.

    Example::

        >>> model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
        >>> history = model.fit(x, y, epochs=20, batch_size=32, validation_split=0.2)
        >>> history.history["val_accuracy"][-1]
    """
    state = _compiled(model, "fit")
    x = _as_inputs(model, x, "fit")
    y = _as_targets(model, y, len(x), "fit")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    _check_batch_size(batch_size, "fit", allow_none=False)
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")

    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        x_val = _as_inputs(model, validation_data[0], "fit", "validation_data[0]")
        y_val = _as_targets(model, validation_data[1], len(x_val), "fit", "validation_data[1]")
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split!r}")
        split = int(len(x) * (1.0 - validation_split))
        if split == 0 or split == len(x):
            raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves an empty"
                             " training or validation set")
        x, x_val, y, y_val = x[:split], x[split:], y[:split], y[split:]
    else:
        x_val = y_val = None

    rng = _random.generator() if seed is None else np.random.default_rng(seed)
    n = len(x)
    starts, step = _batches(n, batch_size)
    history = History()
    callbacks = [*(callbacks or []), history]
    params = {"epochs": int(epochs), "steps": len(starts), "batch_size": int(batch_size), "samples": n,
              "verbose": verbose}
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"fit: callbacks must be Callback objects, got {type(cb).__name__}")
        cb.set_model(model)
        cb.set_params(params)

    model.stop_training = False
    model.train()
    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        t0 = time.perf_counter()
        order = rng.permutation(n) if shuffle else None
        totals = dict.fromkeys(["loss"] + [name for name, _ in state.metrics], 0.0)
        seen = 0
        bar = _progress_bar(len(starts), epoch, epochs, verbose)
        for b, s in enumerate(starts):
            rows = order[s : s + step] if shuffle else slice(s, s + step)
            xb, yb = x[rows], y[rows]
            for cb in callbacks:
                cb.on_train_batch_begin(b, {})
            loss, out = train_step(model, xb, yb, return_output=True)
            totals["loss"] += loss * len(xb)
            for name, fn in state.metrics:
                totals[name] += fn(out, yb) * len(xb)
            seen += len(xb)
            batch_logs = {"loss": loss}
            for cb in callbacks:
                cb.on_train_batch_end(b, batch_logs)
            if bar is not None:
                bar.set_postfix_str(f"loss: {totals['loss'] / seen:.4f}", refresh=False)
                bar.update(1)
        logs = {k: v / n for k, v in totals.items()}
        if x_val is not None:
            val = _evaluate_logs(model, state, x_val, y_val, batch_size)
            logs.update({f"val_{k}": v for k, v in val.items()})
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.set_postfix_str(_format_logs(logs), refresh=True)
            bar.close()
        elif verbose:
            print(f"Epoch {epoch + 1}/{epochs} - {elapsed:.3f}s - {_format_logs(logs)}", file=sys.stdout, flush=True)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})
    return history
