"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, with PyTorch's update rules.

Each `step()` calls one native in-place update per parameter (`ops.sgd_step`, `ops.adam_step`) on
`p.data` with `p.grad`; state buffers are NumPy arrays the optimizer owns.
"""
from typing import ClassVar
from collections.abc import Mapping

import numpy as np

from . import _native, _registry, ops
from ._checks import (FLOAT_DTYPES, check_adam_hyper, check_flag, check_number, check_sgd_hyper,
                      numeric_array)
from .parameter import Parameter


class Optimizer:
    """Base class: holds the parameter list and the state buffers.

    Subclasses define `_HYPER` (hyperparameter names, also their attribute names), `_COUNTERS`,
    `_BUFFERS` (per-parameter state buffer names) and `step()`.
    """

    _HYPER: ClassVar[tuple[str, ...]] = ()
    _COUNTERS: ClassVar[tuple[str, ...]] = ()  # the entries of _HYPER that each step advances (Adam's step_count)
    _BUFFERS: ClassVar[tuple[str, ...]] = ()
    _hyper_version = 0  # bumped by every assignment to a setting (see __setattr__)

    def __setattr__(self, name, value):
        # A compiled model's native plan keeps a copy of the settings (lr, momentum, ...) and
        # compares this counter before each step, so an assignment such as `opt.lr = 0.01` reaches
        # it without the step passing every setting on every call.
        object.__setattr__(self, name, value)
        if name in self._HYPER and name not in self._COUNTERS:
            object.__setattr__(self, "_hyper_version", self._hyper_version + 1)

    def __init__(self, params):
        if isinstance(params, Parameter):
            raise TypeError("params must be an iterable of Parameters, e.g. model.parameters()")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list (a lazy model "
                             f"builds its parameters on its first call or from input_shape)")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] is a {type(p).__name__}, not a lamina Parameter")
            if id(p) in seen:
                raise ValueError(f"params[{i}] appears more than once in the parameter list")
            seen.add(id(p))
        self.params = params
        self._state = {name: [np.zeros_like(p.data) for p in params] for name in self._buffer_names()}

    def _buffer_names(self):
        return self._BUFFERS

    def step(self):
        raise NotImplementedError

    def _check_parameters(self):
        """Check every parameter, gradient and state buffer before the first update, so that a step
        either updates the whole model or raises and leaves it untouched (the in-place ops check
        each parameter too, but only when they reach it). Cheap when nothing is wrong: a step of a
        small model takes tens of microseconds.

        Returns True when every gradient is C-contiguous and aligned too: the step then calls the
        native updates directly (they check everything again natively), without lamina.ops's
        conversions, which copy any other gradient first."""
        state = list(self._state.values())
        direct = True
        for i, p in enumerate(self.params):
            data, grad = p.data, p.grad
            try:
                flags = data.flags
                ok = (flags.writeable and flags.c_contiguous and flags.aligned and data is not grad
                      and grad.dtype == data.dtype and grad.shape == data.shape
                      and data.dtype in FLOAT_DTYPES and type(grad) is np.ndarray)
                for buffers in state:
                    ok = ok and buffers[i].shape == data.shape and buffers[i].dtype == data.dtype
                direct = direct and ok and grad.flags.c_contiguous and grad.flags.aligned
            except AttributeError:  # not arrays
                ok = False
            if not ok:
                self._explain(i)
        if self._checked_version != self._hyper_version:
            self._check_settings()  # as lamina.ops would on every call; once per change here
            object.__setattr__(self, "_checked_version", self._hyper_version)
        return direct

    _checked_version = -1  # the settings version _check_settings last accepted

    def _check_settings(self):
        raise NotImplementedError

    def _explain(self, i):
        """Raise the precise error for parameter i, which failed the quick check in `step`."""
        where = f"{type(self).__name__}.step: parameter {i}"
        data, grad = self.params[i].data, np.asarray(self.params[i].grad)
        if not isinstance(data, np.ndarray) or data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{where} must hold a float32 or float64 array, "
                            f"got {type(data).__name__} {getattr(data, 'dtype', '')}")
        if not (data.flags.writeable and data.flags.c_contiguous and data.flags.aligned):
            raise ValueError(f"{where} (shape {data.shape}) must be writeable, C-contiguous and "
                             f"aligned: it is updated in place")
        if grad.shape != data.shape:
            raise ValueError(f"{where} has shape {data.shape} but its gradient has shape {grad.shape}")
        if grad.dtype != data.dtype:
            raise TypeError(f"{where} has dtype {data.dtype} but its gradient has dtype {grad.dtype}")
        if np.may_share_memory(data, grad):
            raise ValueError(f"{where} shares memory with its gradient")
        for name, buffers in self._state.items():
            buf = buffers[i]
            if buf.shape != data.shape or buf.dtype != data.dtype:
                raise ValueError(f"{where} has shape {data.shape} and dtype {data.dtype} but its "
                                 f"{name} buffer has shape {buf.shape} and dtype {buf.dtype} "
                                 f"(was the parameter replaced after the optimizer was created?)")

    def plan_state(self, i):
        """Parameter i's state buffers, in the native plan's order (SGD: [velocity] with momentum;
        Adam: [m, v])."""
        return [buffers[i] for buffers in self._state.values()]

    def zero_grad(self):
        """Set every parameter's gradient to zero, in place."""
        for p in self.params:
            p.grad.fill(0)

    # --- state and config ----------------------------------------------------------------------
    def _scalars(self):
        return {name: getattr(self, name) for name in self._HYPER}

    def state_dict(self):
        """Hyperparameters and state as a flat dict of plain numbers and arrays (copies):
        e.g. {"lr": 0.1, "momentum": 0.9, ..., "velocity.0": array, "velocity.1": array}."""
        state = dict(self._scalars())
        for name, buffers in self._state.items():
            for i, buf in enumerate(buffers):
                state[f"{name}.{i}"] = buf.copy()
        return state

    def load_state_dict(self, state):
        """Restore `state_dict()` output; keys must match exactly and arrays must match the
        parameters' shapes. Everything is checked before anything changes."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a mapping, got {type(state).__name__}")
        expected = list(self.state_dict().keys())
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in set(expected)]
        if missing or unexpected:
            raise KeyError(f"error loading {type(self).__name__} state: missing keys {missing}; "
                           f"unexpected keys {unexpected}")
        scalars = self._check_scalars({k: _plain(state[k], k) for k in self._scalars()})
        buffers = {}
        for name, bufs in self._state.items():
            for i, buf in enumerate(bufs):
                key = f"{name}.{i}"
                arr = numeric_array(state[key], f"optimizer state[{key!r}]", "value")
                if arr.shape != buf.shape:
                    raise ValueError(f"optimizer state[{key!r}] has shape {arr.shape}, "
                                     f"parameter {i} has shape {buf.shape}")
                buffers[key] = (buf, arr)
        for name, value in scalars.items():
            setattr(self, name, value)
        for buf, arr in buffers.values():
            np.copyto(buf, arr, casting="unsafe")

    def _check_scalars(self, values):
        raise NotImplementedError

    def get_config(self):
        """JSON-able {"class": name, **hyperparameters}; see `optimizer_from_config`."""
        return {"class": type(self).__name__, **self._constructor_kwargs()}

    def _constructor_kwargs(self):
        return {name: getattr(self, name) for name in self._HYPER}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._constructor_kwargs().items())
        return f"{type(self).__name__}({args})"


def _plain(value, key):
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"optimizer state[{key!r}] must be a single number, got shape {arr.shape}")
    return arr.item()


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    PyTorch's rule: g = grad + wd * p; v = momentum * v + g; g = g + momentum * v if nesterov
    else v (when momentum > 0); p -= lr * g.

    Args:
        params (iterable of Parameter): usually `model.parameters()`.
        lr (float): learning rate, >= 0.
        momentum (float): momentum factor in [0, 1]. Default: 0.
        weight_decay (float): L2 penalty, >= 0. Default: 0.
        nesterov (bool): Nesterov momentum (needs momentum > 0). Default: False.

    Example:
        >>> model = Linear(3, 2)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.step(); opt.zero_grad()
    """

    _HYPER = ("lr", "momentum", "weight_decay", "nesterov")
    plan_kind = "sgd"  # the native plan's name for it (looked up on the class, not inherited)
    _CONFIG_KEYS = _HYPER
    _REQUIRED = ("lr",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        values = self._check_scalars({"lr": lr, "momentum": momentum,
                                      "weight_decay": weight_decay, "nesterov": nesterov})
        for name, value in values.items():
            setattr(self, name, value)
        super().__init__(params)

    def _check_scalars(self, values):
        out = {"lr": check_number(values["lr"], "lr"),
               "momentum": check_number(values["momentum"], "momentum", high=1.0),
               "weight_decay": check_number(values["weight_decay"], "weight_decay"),
               "nesterov": check_flag(values["nesterov"], "nesterov")}
        if out["nesterov"] and out["momentum"] == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        if hasattr(self, "params") and (out["momentum"] == 0) != (self.momentum == 0):
            # The velocity buffers exist only with momentum; switching would drop or invent them.
            raise ValueError(f"cannot change momentum from {self.momentum} to {out['momentum']} "
                             f"(velocity buffers exist only with momentum > 0)")
        return out

    def _buffer_names(self):
        return ("velocity",) if self.momentum != 0 else ()

    def _check_settings(self):
        check_sgd_hyper("sgd_step", self.lr, self.momentum, self.weight_decay, self.nesterov,
                        self._state.get("velocity"))

    def step(self):
        """Update every parameter in place from its gradient."""
        update = _native.sgd_step if self._check_parameters() else _sgd_step_converting
        velocity = self._state.get("velocity")
        for i, p in enumerate(self.params):
            if not p.requires_grad:
                continue  # frozen (requires_grad=False / trainable=False): PyTorch skips it too
            update(p.data, p.grad, None if velocity is None else velocity[i], float(self.lr),
                   float(self.momentum), float(self.weight_decay), bool(self.nesterov))


def _sgd_step_converting(param, grad, velocity, lr, momentum, weight_decay, nesterov):
    ops.sgd_step(param, grad, velocity, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


class Adam(Optimizer):
    r"""Adam with PyTorch's rule (L2 weight decay added to the gradient).

    g = grad + wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), with t the step count (from 1).

    Args:
        params (iterable of Parameter): usually `model.parameters()`.
        lr (float): learning rate, >= 0. Default: 1e-3.
        betas (tuple of 2 floats): decay rates of the moment estimates, each in [0, 1).
            Default: (0.9, 0.999).
        eps (float): added to the denominator, >= 0. Default: 1e-8.
        weight_decay (float): L2 penalty, >= 0. Default: 0.

    Example:
        >>> model = Linear(3, 2)
        >>> opt = Adam(model.parameters(), lr=1e-3)
        >>> opt.step(); opt.step_count
        1
    """

    _HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay", "step_count")
    plan_kind = "adam"
    _CONFIG_KEYS = ("lr", "betas", "eps", "weight_decay")
    _REQUIRED = ()
    _COUNTERS = ("step_count",)
    _BUFFERS = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        values = self._check_scalars({"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                                      "weight_decay": weight_decay, "step_count": 0})
        for name, value in values.items():
            setattr(self, name, value)
        super().__init__(params)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _check_scalars(self, values):
        step = values["step_count"]
        if isinstance(step, (bool, np.bool_)) or not float(step).is_integer() or step < 0:
            raise ValueError(f"invalid step_count: {step!r} (must be a non-negative integer)")
        return {"lr": check_number(values["lr"], "lr"),
                "beta1": check_number(values["beta1"], "beta1", high=1.0, high_open=True),
                "beta2": check_number(values["beta2"], "beta2", high=1.0, high_open=True),
                "eps": check_number(values["eps"], "eps"),
                "weight_decay": check_number(values["weight_decay"], "weight_decay"),
                "step_count": int(step)}

    def _check_settings(self):
        check_adam_hyper("adam_step", 1, self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)

    def step(self):
        """Advance the step count and update every parameter in place from its gradient."""
        update = _native.adam_step if self._check_parameters() else _adam_step_converting
        check_adam_hyper("adam_step", self.step_count + 1, self.lr, self.beta1, self.beta2, self.eps,
                         self.weight_decay)
        self.step_count += 1
        for p, m, v in zip(self.params, self._state["m"], self._state["v"]):
            if not p.requires_grad:
                continue  # frozen (requires_grad=False / trainable=False)
            update(p.data, p.grad, m, v, self.step_count, float(self.lr), float(self.beta1), float(self.beta2),
                   float(self.eps), float(self.weight_decay))

    def _constructor_kwargs(self):
        return {"lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps,
                "weight_decay": self.weight_decay}


def _adam_step_converting(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    ops.adam_step(param, grad, m, v, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)


_registry.register_optimizer(SGD, Adam)


optimizer_from_config = _registry.optimizer_from_config
