"""Lowering a model to a native execution plan: one C++ call per training step or prediction.

`lower` asks each layer for its step (`plan_step()`: a kind, its parameters, its attributes, and
the buffers it updates, such as running statistics), fuses an activation into the dense, conv or
batch-norm step before it, asks the loss for its native kind (`plan_kind`) and
the optimizer for its state buffers, and hands the C++ plan named step descriptors that point at
the parameters' own arrays (no copies: `parameters()` stays the single source of truth). Frozen
parameters go without a gradient and without an update. Anything without a native form (a layer
without a step, a user subclass that overrides forward, a custom loss or optimizer) makes `lower`
return None and the caller keeps the layer-by-layer path, which computes the same numbers with the
same kernels, dropout masks included (both draw them from `_random.dropout_counters`).
"""

import numpy as np

from . import _changes, _native, _random
from ._checks import ROW_ACTIVATIONS, as_input, check_labels, check_unit_interval

_INT64 = np.dtype(np.int64)  # class labels in the native step's form (compared by identity)
_BY_CLASS = ("cross_entropy", "probability_cross_entropy", "nll")

enabled = True  # see set_enabled


class SampleShapeChanged(ValueError):
    """An input whose per-sample shape is not the one the plan was built for (the layers may still
    take it: the caller builds a plan for the new shape)."""


def set_enabled(flag):
    """Switch the fused path on or off (tests compare it with the layer-by-layer path)."""
    global enabled
    enabled = bool(flag)
    _changes.happened()  # plans already built must not be used while it is off


def cached(model, loss=None, optimizer=None, sample_shape=None):
    """The model's plan for this loss, optimizer and per-sample input shape, built once and reused
    until something it depends on changes (see _changes.py); None when the model has no native form."""
    if not enabled:
        return None
    cache = model.__dict__.get("_native_plan")
    if (cache is None or cache.changes != _changes.count or cache.loss is not loss
            or cache.optimizer is not optimizer or cache.sample_shape != sample_shape):
        cache = _Cached(model, loss, optimizer, sample_shape)
        model.__dict__["_native_plan"] = cache
    return cache.plan


class _Cached:
    """A plan, what it was built for (loss, optimizer, sample shape) and the change count it was
    built at. `train_step` is the plan's training step when it has an optimizer, else None: the
    training step's fast path (training.loop.train_step) calls it while the count has not moved."""

    __slots__ = ("changes", "loss", "optimizer", "sample_shape", "plan", "train_step")

    def __init__(self, model, loss, optimizer, sample_shape):
        self.changes = _changes.count
        self.loss, self.optimizer, self.sample_shape = loss, optimizer, sample_shape
        self.plan = lower(model, loss, optimizer, sample_shape)
        self.train_step = self.plan.train_step if self.plan is not None and optimizer is not None else None


def _trusted(layer):
    # A user subclass that overrides forward or backward computes something its step does not.
    cls = type(layer)
    return all(getattr(getattr(cls, name, None), "__module__", "").startswith("lamina.")
               for name in ("forward", "backward", "plan_step"))


def _activation_attrs(attrs):
    """A dense or activation step's attributes in the native plan's words: an elementwise
    activation (GELU's tanh form is its own kind) or a normalisation over the last axis."""
    act = attrs.get("activation")
    if act == "gelu" and attrs.get("approximate", "none") == "tanh":
        act = "gelu_tanh"
    row = act in ROW_ACTIVATIONS
    return {"activation": None if row else act, "normalize": act if row else None,
            "negative_slope": float(attrs.get("negative_slope", 0.01))}


def _fusable(step, attrs):
    # A dense or conv step whose output nothing is applied to yet: an activation after it joins its
    # epilogue (a conv step takes elementwise ones only; softmax over rows is the dense step's). A
    # batch-norm step takes a ReLU, whose backward it folds into its own.
    kind, _, own, _ = step
    if kind == "batch_norm":
        return attrs["activation"] == "relu" and attrs["normalize"] is None and own["activation"] is None
    return (kind == "dense" or (kind == "conv2d" and attrs["normalize"] is None)) \
        and own["activation"] is None and own.get("normalize") is None


def _steps(model, sample_shape):
    """The model's steps, as [kind, parameters, attributes] with each activation fused into the
    dense or conv step before it, or None when a layer has no native form. Each layer is asked for
    its step with its input shape (batch first), which padding such as Keras's 'same' depends on."""
    try:
        layers = list(model)
    except TypeError:
        return None
    shape = None if sample_shape is None else (None, *sample_shape)
    steps = []
    for layer in layers:
        step = layer.plan_step(shape) if _trusted(layer) else None
        if step is None:
            return None
        if shape is not None:
            try:
                shape = layer.output_shape(shape)
            except (TypeError, ValueError):
                return None  # the layers name the problem when the batch reaches them
        for one in step if isinstance(step, list) else [step]:
            kind, attrs = one["kind"], dict(one["attrs"])
            if kind == "identity":
                continue
            if kind in ("dense", "activation", "conv2d"):
                attrs = _activation_attrs(attrs)
                if kind == "activation" and steps and _fusable(steps[-1], attrs):
                    into = steps[-1][0]
                    steps[-1][2].update(attrs if into == "dense" else _conv_attrs(attrs) if into == "conv2d"
                                        else {"activation": attrs["activation"]})
                    continue
                if kind == "conv2d":
                    attrs = _conv_attrs(attrs, one["attrs"])
            steps.append([kind, one["params"], attrs, one.get("buffers", {})])
    return steps or None


def _conv_attrs(activation_attrs, own=None):
    """A conv step's attributes: its geometry, and the elementwise activation of its epilogue."""
    geometry = {k: v for k, v in (own or {}).items() if k not in ("activation", "negative_slope", "approximate")}
    return {**geometry, "activation": activation_attrs["activation"],
            "negative_slope": activation_attrs["negative_slope"]}


def _ends_in(steps, activation):
    kind, _, attrs, _ = steps[-1]
    return kind in ("dense", "activation") and activation in (attrs["activation"], attrs["normalize"])


def lower(model, loss=None, optimizer=None, sample_shape=None):
    """A `NativePlan` for the model (with its loss and optimizer, for training), or None."""
    steps = _steps(model, sample_shape)
    if steps is None:
        return None
    if loss is None:
        loss_kind = "mse"  # a prediction-only plan never evaluates it
    else:
        loss_kind = type(loss).__dict__.get("plan_kind")  # not inherited: a subclass may compute another loss
        needs = type(loss).__dict__.get("plan_needs")
        if loss_kind is None or (needs is not None and not _ends_in(steps, needs)):
            return None
    params = [p for _, ps, _, _ in steps for p in ps.values() if p is not None]
    dtypes = {p.data.dtype for p in params}
    dtypes |= {b.dtype for _, _, _, bs in steps for name, b in bs.items() if name != "num_batches_tracked"}
    if len(dtypes) != 1:
        return None
    trainable = [p for p in params if p.requires_grad]
    if optimizer is None:
        opt_kind, updates = "sgd", []
    else:
        opt_kind = type(optimizer).__dict__.get("plan_kind")
        if opt_kind is None or [id(p) for p in optimizer.params if p.requires_grad] != [id(p) for p in trainable]:
            return None  # the optimizer does not update exactly this model's trained parameters, in order
        index = {id(p): i for i, p in enumerate(optimizer.params)}
        updates = [{"param": p.data, "grad": p.grad, "state": optimizer.plan_state(index[id(p)])} for p in trainable]
    descriptors = []
    for kind, ps, attrs, buffers in steps:
        arrays = {}
        for name, p in ps.items():
            arrays[name] = None if p is None else p.data
            arrays[name + "_grad"] = p.grad if p is not None and p.requires_grad else None  # None: frozen
        arrays.update(buffers)  # running statistics: written by training steps, never trained
        descriptors.append({"kind": kind, "arrays": arrays, "attrs": attrs})
    if sample_shape is None:
        first = steps[0]
        if first[0] != "dense":
            return None  # the input's shape is known only from a batch
        sample_shape = (first[1]["weight"].data.shape[1],)
    try:
        native = _native.Plan(descriptors, tuple(sample_shape), loss_kind, opt_kind, updates)
    except (TypeError, ValueError):
        return None  # e.g. an array that is not C-contiguous: the Python path handles it
    return NativePlan(native, loss_kind, optimizer, next(iter(dtypes)), tuple(sample_shape), model)


class NativePlan:
    """A compiled model: `train_step` (training mode) and `predict` (inference mode) each run as
    one native call."""

    def __init__(self, native, loss_kind, optimizer, dtype, sample_shape, model):
        self._native = native
        self._native_step = native.train_step  # bound once: this runs on every step
        self._draws = native.random_per_sample  # dropout counters a sample takes
        self._by_class = loss_kind in _BY_CLASS
        self._unit_targets = loss_kind not in ("mse", "nll")  # probabilities or 0/1 targets in [0, 1]
        self._optimizer = optimizer
        self._adam = optimizer is not None and type(optimizer).__dict__.get("plan_kind") == "adam"
        self._hyper_version = None  # the optimizer's settings the native plan holds (see _run)
        self._dtype = dtype
        self._sample_shape = sample_shape
        self._first = next(iter(model))
        self._out = tuple(native.output_shape)

    def _input(self, x):
        arr = as_input(x, self._dtype, self._first, min_ndim=1)
        if arr.shape[1:] != self._sample_shape:
            raise SampleShapeChanged(f"{self._first!r}: the plan takes inputs of shape (batch, "
                                     f"{', '.join(map(str, self._sample_shape))}), got shape {arr.shape}")
        return arr

    def _target(self, y, batch):
        """Targets as the native loss takes them, checked as the Python losses check them."""
        if type(y) is np.ndarray and self._by_class and y.dtype == np.int64 and y.ndim == 1:
            return y  # class labels: the native call checks their count and range
        t = np.asarray(y)
        if t.dtype.kind not in "iufb":
            raise TypeError(f"train_step: targets must be numbers, got dtype {t.dtype}")
        if self._by_class and t.ndim == 1:
            return check_labels("train_step", t, batch, self._out[-1], allow_float=True)
        if t.ndim == 1 and self._out == (1,):
            t = t.reshape(-1, 1)
        t = np.ascontiguousarray(t, dtype=self._dtype)
        if t.shape != (batch, *self._out):
            raise ValueError(f"train_step: targets of shape {t.shape} do not match the output shape "
                             f"{(batch, *self._out)}")
        if self._unit_targets:
            check_unit_interval("train_step", t)
        return t

    def train_step(self, xb, yb, return_output=False):
        """Forward, loss, backward and optimizer update in one native call, in training mode;
        returns the loss (and the output before the update, with return_output=True)."""
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
        # Dropout's counters are taken once the call has succeeded: a call the native checks reject
        # (and the converting path then retries) must not take them twice.
        key, counter = _random.dropout_position() if self._draws else (0, 0)
        step = opt.step_count + 1 if self._adam else 0
        result = self._native_step(x, t, step, return_output, key, counter)
        if self._draws:
            _random.dropout_counters(len(x) * self._draws)
        if self._adam:
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
        """The model's output for x, in inference mode, in one native call."""
        if type(x) is np.ndarray:
            try:
                return self._native.predict(x)  # it checks dtype, shape, layout and finiteness itself
            except (TypeError, ValueError):
                pass  # converted below, or rejected in the layers' words
        return self._native.predict(self._input(x))
