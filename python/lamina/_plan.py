"""Lowering a Sequential to a native execution plan: one C++ call per training step or prediction.

`lower` maps the layer list onto dense steps (a Linear or Dense, with the activation that follows it
fused), the loss and the optimizer onto their native kinds, and hands the C++ plan the parameters'
own arrays and the optimizer's state buffers (no copies: `parameters()` stays the single source of
truth). Anything without a native form (another layer type, two activations in a row, a custom
loss or optimizer) makes `lower` return None and the caller keeps the layer-by-layer Python path,
which computes the same numbers with the same kernels.
"""

import numpy as np

from . import _changes, _native, losses, optim
from ._checks import check_unit_interval
from ._checks import as_input
from .layers import Dense, Linear, ReLU, Sigmoid, Softmax, Tanh

_INT64 = np.dtype(np.int64)  # class labels in the native step's form (compared by identity)
_ACTIVATION_MODULES = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax"}


enabled = True  # see set_enabled


def set_enabled(flag):
    """Switch the fused path on or off (tests compare it with the layer-by-layer path)."""
    global enabled
    enabled = bool(flag)
    _changes.happened()  # plans already built must not be used while it is off


def cached(model, loss=None, optimizer=None):
    """The model's plan for this loss and optimizer, built once and reused until something it
    depends on changes (see _changes.py); None when the model has no native form."""
    if not enabled:
        return None
    cache = model.__dict__.get("_native_plan")
    if (cache is None or cache.changes != _changes.count or cache.loss is not loss
            or cache.optimizer is not optimizer):
        cache = _Cached(model, loss, optimizer)
        model._native_plan = cache
    return cache.plan


class _Cached:
    """A plan, what it was built for (loss, optimizer) and the change count it was built at.
    `train_step` is the plan's training step when it has an optimizer, else None: the training
    step's fast path (training.train_step) calls it while the count has not moved."""

    __slots__ = ("changes", "loss", "optimizer", "plan", "train_step")

    def __init__(self, model, loss, optimizer):
        self.changes = _changes.count
        self.loss, self.optimizer = loss, optimizer
        self.plan = lower(model, loss, optimizer)
        self.train_step = self.plan.train_step if self.plan is not None and optimizer is not None else None


def _dense_steps(model):
    """[(layer, activation or None, softmax)] or None if the model has no native form."""
    steps = []
    for layer in model:
        if isinstance(layer, (Linear, Dense)):
            if not layer.built or getattr(layer, "bias", None) is not None and layer.bias.data.ndim != 1:
                return None
            act = getattr(layer, "_act", None)
            steps.append([layer, None if act == "softmax" else act, act == "softmax"])
        elif type(layer) in _ACTIVATION_MODULES and steps and steps[-1][1] is None and not steps[-1][2]:
            kind = _ACTIVATION_MODULES[type(layer)]
            if kind == "softmax":
                if getattr(layer, "dim", -1) not in (-1, 1):
                    return None
                steps[-1][2] = True
            else:
                steps[-1][1] = kind
        else:
            return None
    return steps or None


def _loss_kind(loss, steps):
    last_act, last_softmax = steps[-1][1], steps[-1][2]
    if loss is None:
        return "mse"  # a prediction-only plan never evaluates it
    if type(loss) is losses.CrossEntropyLoss:
        return "cross_entropy"
    if type(loss) is losses.BCEWithLogitsLoss:
        return "binary_cross_entropy"
    if type(loss) is losses.MSELoss:
        return "mse"
    if type(loss) is losses.CategoricalCrossEntropyOnProbabilities and last_softmax:
        return "probability_cross_entropy"
    if type(loss) is losses.BinaryCrossEntropyOnProbabilities and last_act == "sigmoid":
        return "probability_binary_cross_entropy"
    return None


def lower(model, loss=None, optimizer=None):
    """A `NativePlan` for the model (with its loss and optimizer, for training), or None."""
    steps = _dense_steps(model)
    if steps is None:
        return None
    kind = _loss_kind(loss, steps)
    if kind is None:
        return None
    params = [p for layer, _, _ in steps for p in layer.parameters()]
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) != 1:
        return None
    if optimizer is None:
        opt_name, buffers = "sgd", {}
    elif type(optimizer) is optim.SGD:
        opt_name, buffers = "sgd", optimizer._state
    elif type(optimizer) is optim.Adam:
        opt_name, buffers = "adam", optimizer._state
    else:
        return None
    if optimizer is not None and [id(p) for p in optimizer.params] != [id(p) for p in params]:
        return None  # the optimizer does not update exactly this model's parameters, in order

    # Named step descriptors (one dense step per layer, its activation fused) and, for training, one
    # update per parameter in the optimizer's order with its state buffers.
    index = {id(p): i for i, p in enumerate(params)}
    state_names = [name for name in (("velocity",) if opt_name == "sgd" else ("m", "v")) if name in buffers]
    descriptors, updates = [], []
    for layer, act, softmax in steps:
        W, b = layer.weight, layer.bias
        descriptors.append({"kind": "dense",
                            "arrays": {"weight": W.data, "bias": None if b is None else b.data,
                                       "weight_grad": W.grad, "bias_grad": None if b is None else b.grad},
                            "attrs": {"activation": act, "normalize": "softmax" if softmax else None}})
        if optimizer is not None:
            updates += [{"param": p.data, "grad": p.grad, "state": [buffers[name][index[id(p)]] for name in state_names]}
                        for p in (W, b) if p is not None]
    try:
        native = _native.Plan(descriptors, (steps[0][0].weight.data.shape[1],), kind, opt_name, updates)
    except (TypeError, ValueError):
        return None  # e.g. an array that is not C-contiguous: the Python path handles it
    return NativePlan(native, kind, optimizer, next(iter(dtypes)), steps[0][0], steps[-1][0])


class NativePlan:
    """A compiled model: `train_step` and `predict` each run as one native call."""

    def __init__(self, native, loss_kind, optimizer, dtype, first_layer, last_layer):
        self._native = native
        self._native_step = native.train_step  # bound once: this runs on every step
        self._by_class = loss_kind in ("cross_entropy", "probability_cross_entropy")
        self._unit_targets = loss_kind != "mse"  # probabilities or 0/1 targets must lie in [0, 1]
        self._optimizer = optimizer
        self._adam = type(optimizer) is optim.Adam
        self._hyper_version = None  # the optimizer's settings the native plan holds (see _run)
        self._dtype = dtype
        self._first = first_layer
        self._in = first_layer.weight.data.shape[1]
        self._out = last_layer.weight.data.shape[0]

    def _input(self, x):
        if type(x) is np.ndarray and x.dtype == self._dtype and x.ndim == 2 and x.flags.c_contiguous:
            return x
        return as_input(x, self._dtype, self._first, self._in, ndim=2)

    def _target(self, y, batch):
        """Targets as the native loss takes them, checked as the Python losses check them."""
        if type(y) is np.ndarray and self._by_class and y.dtype == np.int64 and y.ndim == 1:
            return y  # class labels: the native call checks their count and range
        t = np.asarray(y)
        if t.dtype.kind not in "iufb":
            raise TypeError(f"train_step: targets must be numbers, got dtype {t.dtype}")
        if self._by_class and t.ndim == 1:
            if t.dtype.kind == "f" and not np.array_equal(t, np.round(t)):
                raise ValueError("train_step: class labels must be integers")
            return np.ascontiguousarray(t, dtype=np.int64)
        if t.ndim == 1 and self._out == 1:
            t = t.reshape(-1, 1)
        t = np.ascontiguousarray(t, dtype=self._dtype)
        if t.shape != (batch, self._out):
            raise ValueError(f"train_step: targets of shape {t.shape} do not match the output shape "
                             f"{(batch, self._out)}")
        if self._unit_targets:
            check_unit_interval("train_step", t)
        return t

    def train_step(self, xb, yb, return_output=False):
        """Forward, loss, backward and optimizer update in one native call; returns the loss
        (and the output before the update, with return_output=True)."""
        if type(xb) is np.ndarray and type(yb) is np.ndarray and yb.dtype is _INT64 and self._by_class:
            # Arrays and class labels: the native call checks everything about them (dtype, shape,
            # layout, label range) before it touches memory, so they go straight in; if they do
            # not fit, the converting path below tries again and names the problem.
            try:
                return self._run(xb, yb, return_output)
            except (TypeError, ValueError):
                pass
        x = self._input(xb)
        return self._run(x, self._target(yb, x.shape[0]), return_output)

    def _run(self, x, t, return_output):
        opt = self._optimizer
        if opt._hyper_version != self._hyper_version:  # settings assigned since the last step
            self._send_settings()
        if not self._adam:
            return self._native_step(x, t, 0, return_output, 0, 0)
        step = opt.step_count + 1
        result = self._native_step(x, t, step, return_output, 0, 0)
        opt.step_count = step
        return result

    def _send_settings(self):
        opt = self._optimizer
        if self._adam:
            self._native.set_hyper(opt.lr, 0.0, opt.weight_decay, False, opt.beta1, opt.beta2, opt.eps)
        else:
            self._native.set_hyper(opt.lr, opt.momentum, opt.weight_decay, opt.nesterov, 0.0, 0.0, 0.0)
        self._hyper_version = opt._hyper_version

    def predict(self, x):
        """The model's output for x, in one native call."""
        return self._native.predict(self._input(x))
