"""The training and inference loops: `train_step` (one batch: one native call when the model has
a plan), `fit` (epochs of shuffled batches, validation, callbacks), `evaluate` and `predict`, in
training or inference mode as Keras runs them.
"""
import sys
import time
from contextlib import contextmanager

import numpy as np

from .. import _changes, _plan, _random
from .._checks import check_finite, check_int
from .callbacks import Callback, History
from .compile import _compiled


def format_seconds(seconds):
    """A duration in the unit that reads best, three significant digits: "850 us", "12.3 ms", "4.56 s".
    ASCII only ("us"), as Keras writes it, so that any terminal encoding can print it."""
    unit, scale = next(((u, s) for u, s in (("s", 1.0), ("ms", 1e-3)) if seconds >= s), ("us", 1e-6))
    value = seconds / scale
    text = f"{value:.3g}"
    return f"{value:.0f} {unit}" if "e" in text else f"{text} {unit}"  # 1234 s, not 1.23e+03 s


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
        try:
            return cache.train_step(xb, yb, return_output)
        except _plan.SampleShapeChanged:
            pass  # a plan for this input shape is built below
    state = _compiled(model, "train_step")
    sample_shape = np.shape(xb)[1:]
    plan = _plan.cached(model, state.loss, state.optimizer, sample_shape) if state.optimizer is not None else None
    if plan is not None:
        return plan.train_step(xb, yb, return_output)
    if state.optimizer is not None:
        state.optimizer._check_parameters()  # before zero_grad, which would clear a grad bound to data
    model.zero_grad()
    with _mode(model, training=True):  # as Keras's train_step, whatever mode the model is in
        out = model(xb)
        loss = state.loss(out, yb)
        model.backward(state.loss.backward())
    if state.optimizer is None:
        # The first forward pass has built a lazily shaped model: its parameters exist now.
        state.optimizer = state.optimizer_factory(list(model.parameters()))
        model.optimizer = state.optimizer
    state.optimizer.step()
    return (loss, out) if return_output else loss


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
    check_finite(x, where, name)
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
        check_finite(y, where, name)
    else:
        y = np.ascontiguousarray(y, dtype=np.int64)
    return y


def _check_batch_size(batch_size, where, allow_none):
    if batch_size is None and allow_none:
        return
    check_int(batch_size, f"{where}: batch_size", 1, error=ValueError)


def _batches(n, batch_size):
    step = n if batch_size is None else int(batch_size)
    return range(0, n, step), step


@contextmanager
def _mode(model, training):
    """Run in training or inference mode, then put the model's own mode back."""
    was = model.training
    if was != training:
        model.train(training)
    try:
        yield
    finally:
        if was != training:
            model.train(was)


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
    if type(x) is np.ndarray and batch_size is None:
        cache = model.__dict__.get("_native_plan")
        if cache is not None and cache.changes == _changes.count and cache.plan is not None:
            try:
                return cache.plan.predict(x)  # nothing changed since it was built (for any loss)
            except (TypeError, ValueError):
                pass  # another input shape, or bad input: looked at again below
        state = model.__dict__.get("_compiled")
        plan = (_plan.cached(model, state.loss, state.optimizer, x.shape[1:]) if state is not None
                else _plan.cached(model, sample_shape=x.shape[1:]))
        if plan is not None:
            try:
                return plan.predict(x)  # checks dtype, shape and finiteness natively
            except (TypeError, ValueError):
                pass  # the path below rejects it too, in the words of the layer-by-layer path
    x = _as_inputs(model, x, "predict")
    _check_batch_size(batch_size, "predict", allow_none=True)
    starts, step = _batches(len(x), batch_size)
    with _mode(model, training=False):
        outs = [np.asarray(model(x[s : s + step])) for s in starts]
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


def _evaluate_logs(model, state, x, y, batch_size):
    """{'loss': ..., metric: ...} over (x, y), each the sample-weighted mean of its batch values."""
    n = len(x)
    starts, step = _batches(n, batch_size)
    totals = dict.fromkeys(["loss"] + [name for name, _ in state.metrics], 0.0)
    with _mode(model, training=False):
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
    check_int(epochs, "fit: epochs", 0, error=ValueError)
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
            print(f"Epoch {epoch + 1}/{epochs} - {format_seconds(elapsed)} - {_format_logs(logs)}", file=sys.stdout, flush=True)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})
    return history
