"""Callbacks `fit` calls at the start and end of training, of each epoch and of each batch, with
Keras's hook names: Callback, History, LambdaCallback, EarlyStopping.
"""
import math

import numpy as np

from .._checks import check_int


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
        check_int(patience, "EarlyStopping: patience", 0, error=ValueError)
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
