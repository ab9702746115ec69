"""`Module`, the protocol every layer, container and user model follows (PyTorch's `nn.Module`, with
Keras's `trainable`, `name`, `get_weights` beside it).

Parameters, buffers and child modules register themselves when assigned as attributes
(`self.fc = Linear(3, 2)`), and are also kept as plain attributes so that forward reads them at
full speed. Names follow PyTorch: `fc.weight`, `0.bias`, `bn.running_mean`.
"""
from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Iterator, Mapping
from typing import Optional, TypeVar

import numpy as np

from . import _changes
from ._checks import check_flag, numeric_array, who
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_name_counts: dict[str, int] = {}  # Keras-style automatic names: dense, dense_1, dense_2, ...


def _auto_name(cls):
    base = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", cls.__name__).lower()  # Keras's: Conv2D -> conv2d
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Saved:
    """What a layer's forward pass keeps for its backward pass: plain attributes, so that the hot
    path does not go through Module's registering __setattr__."""

    __slots__ = ("x", "y", "z", "extra")

    def __init__(self):
        self.x = self.y = self.z = self.extra = None


_M = TypeVar("_M", bound="Module")  # methods that return self keep the subclass


class Module:
    """Base class of every lamina layer, of `Sequential` and of user models.

    The protocol: `y = m(x)` (same as `m.forward(x)`) caches what `m.backward(dy)` needs; backward
    returns dL/dx and ADDS the parameter gradients into `p.grad` (frozen parameters excepted).
    `zero_grad()` clears them. Forward keeps references to the arrays it saw and returned: do not
    modify them in place before calling backward. NaN and Inf in an input propagate to the output.

    Args:
        name (str or None): the layer's name (Keras's `name=`); None gives an automatic one
            ("dense", "dense_1", ...), which is not saved in the config.

    Example:
        >>> class Net(Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = Linear(3, 2)
        >>> [name for name, _ in Net().named_parameters()]
        ['fc.weight', 'fc.bias']
    """

    # Set in __init__ through __dict__ (past the registering __setattr__); declared for type checkers.
    _parameters: dict[str, Optional[Parameter]]
    _buffers: dict[str, Optional[np.ndarray]]
    _modules: dict[str, Optional[Module]]

    def __init__(self, name=None):
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_modules"] = {}
        d["_registered"] = set()  # names in the three tables above
        d["training"] = True
        d["_trainable"] = True
        if name is not None and not (isinstance(name, str) and name):
            raise TypeError(f"{type(self).__name__}: name must be a non-empty string, got {name!r}")
        d["_name"] = name

    def __setattr__(self, name, value):
        # Runs on every attribute assignment, so the common case (a plain value under a name that
        # is not registered) is one isinstance and one set lookup.
        if isinstance(value, _REGISTERED) or name in self.__dict__.get("_registered", ()):
            value = self._register(name, value)
        object.__setattr__(self, name, value)

    def _register(self, name, value):
        """Record a parameter, child module or buffer assigned as an attribute; returns the value
        to store (a buffer is kept as a C-contiguous, writeable array)."""
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before "
                                 f"{type(self).__name__}.__init__() called Module.__init__()")
        if isinstance(value, Parameter):
            if not d["_trainable"]:
                value.requires_grad = False
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            d["_modules"][name] = value
        elif name in d["_buffers"]:
            self._set_buffer(name, value)
            return d["_buffers"][name]
        elif value is not None:
            table = "parameter" if name in d["_parameters"] else "child module"
            raise TypeError(f"cannot assign {type(value).__name__} as {table} {name!r} "
                            f"(a {'Parameter' if table == 'parameter' else 'Module'} or None is expected)")
        else:
            d["_parameters" if name in d["_parameters"] else "_modules"][name] = None
        d["_registered"].add(name)
        _changes.happened()  # a compiled plan points at the old arrays or layers
        return value

    def __delattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            self.__dict__[table].pop(name, None)
        self.__dict__["_registered"].discard(name)
        _changes.happened()
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Add a buffer: an array saved and loaded with the parameters but not trained (running
        statistics). It is reachable as `self.<name>` and listed by `buffers()`."""
        self.__dict__["_buffers"][name] = None
        self.__dict__["_registered"].add(name)
        self._set_buffer(name, array)
        object.__setattr__(self, name, self._buffers[name])

    def _set_buffer(self, name, array):
        if array is not None:
            array = np.require(numeric_array(array, self, f"buffer {name!r}"), requirements=["C", "A", "W"])
        self._buffers[name] = array

    def register_parameter(self, name, param):
        setattr(self, name, param)

    def add_module(self, name, module):
        setattr(self, name, module)

    # --- forward / backward -------------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    # --- the tree of modules ------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> list[Module]:
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield (name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> list[Module]:
        return [m for _, m in self.named_modules()]

    # --- parameters and buffers ---------------------------------------------------------------
    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield (name, Parameter) pairs, names as in PyTorch ("weight", "0.weight", "fc.bias")."""
        seen: set[int] = set()
        for path, m in self.named_modules(prefix) if recurse else [(prefix, self)]:
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        """Return the list of Parameters, in `named_parameters()` order."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for path, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{path}.{name}" if path else name), b

    def buffers(self) -> list[np.ndarray]:
        """Return the buffers (running statistics): saved and loaded, never trained."""
        return [b for _, b in self.named_buffers()]

    def num_parameters(self) -> int:
        """Total number of scalar parameters (0 for a lazy layer that is not built yet)."""
        return sum(p.size for p in self.parameters())

    def count_params(self) -> int:
        """Keras's name for `num_parameters()`."""
        return self.num_parameters()

    def zero_grad(self) -> None:
        """Set every `p.grad` to zero in place."""
        for p in self.parameters():
            p.grad.fill(0)

    @property
    def trainable(self):
        """Keras's switch: False freezes every parameter of this module (and its children),
        in the layer-by-layer path and in the native plan alike."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = check_flag(value, "trainable")
        for m in self.modules():
            m.__dict__["_trainable"] = value
        for p in self.parameters():
            p.requires_grad = value

    def requires_grad_(self: _M, requires_grad: bool = True) -> _M:
        """PyTorch's switch: set `requires_grad` of every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    @property
    def trainable_weights(self) -> list[Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        return [p for p in self.parameters() if not p.requires_grad]

    # --- mode ---------------------------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        """Set training mode on this module and its children (returns self): Dropout drops and
        normalization uses batch statistics. `fit` and `train_step` train in this mode."""
        mode = check_flag(mode, "mode")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self: _M) -> _M:
        """Set inference mode; same as `train(False)`. `predict` and `evaluate` run in it."""
        return self.train(False)

    # --- shapes and lazy building ---------------------------------------------------------------
    @property
    def built(self):
        """True once the layer has its parameters (lazy layers build on first call)."""
        return True

    def build(self, input_shape):
        """Create the parameters for inputs of `input_shape` (batch first); no-op by default."""

    def output_shape(self, input_shape):
        """Shape of the output for an input of `input_shape` (batch first, entries may be None)."""
        return tuple(input_shape)

    @property
    def name(self):
        """The name given at construction, or an automatic Keras-style one ("dense_1")."""
        if self._name is None:
            self.__dict__["_name_auto"] = self.__dict__.get("_name_auto") or _auto_name(type(self))
            return self._name_auto
        return self._name

    # --- state --------------------------------------------------------------------------------
    def _state_entries(self, prefix=""):
        """(key, module, kind, current array or None) for every entry of a full state_dict, in
        PyTorch's order; lazy layers that are not built yet list their keys with None."""
        for path, m in self.named_modules(prefix):
            for key, kind, arr in m._own_state():
                yield (f"{path}.{key}" if path else key), m, kind, arr

    def _own_state(self):
        # This module's own entries: its parameters, then its buffers.
        for name, p in self._parameters.items():
            if p is not None:
                yield name, "parameter", p.data
        for name, b in self._buffers.items():
            if b is not None:
                yield name, "buffer", b

    def _check_loaded(self, name, arr):
        """A hook for layers whose state has limits beyond its shape (running statistics): raise
        ValueError for a value `load_state_dict` must not write into entry `name`."""

    def state_dict(self):
        """Return {name: copy of the array} for every parameter and buffer, with PyTorch's names
        and shapes (Linear's weight is (out, in); BatchNorm's running_mean is a buffer)."""
        return {key: arr.copy() for key, _, _, arr in self._state_entries() if arr is not None}

    def _build_from_state(self, state, prefix):
        # Lazy layers build themselves from the shapes in a state_dict; built layers do nothing.
        for name, m in self.named_children():
            m._build_from_state(state, f"{prefix}{name}.")

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of `state_dict` into the parameters and buffers, in place.

        Values may be NumPy arrays or anything with `__array__` (a CPU torch tensor, for example);
        they are cast to the parameter dtype. Everything is checked before anything is written: with
        `strict=True` missing or unexpected keys raise KeyError; a wrong shape or a non-numeric
        dtype raises ValueError or TypeError naming the entry and its layer. A lazy layer that is
        not built yet is built from the shapes it is given.

        Returns:
            IncompatibleKeys: (missing_keys, unexpected_keys), both empty when strict.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, "
                            f"got {type(state_dict).__name__}")
        expected = [key for key, _, _, _ in self._state_entries()]
        expected_set = set(expected)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected_set]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"error loading state_dict into {type(self).__name__}: " + "; ".join(parts))
        self._build_from_state(state_dict, "")
        targets = []
        for key, module, kind, dest in self._state_entries():
            if key not in state_dict:
                continue
            arr = numeric_array(state_dict[key], f"state_dict[{key!r}]", "value")
            if arr.shape != dest.shape:
                raise ValueError(f"state_dict[{key!r}] has shape {arr.shape}, the model expects "
                                 f"{dest.shape} ({kind} of {who(module)})")
            module._check_loaded(key.rsplit(".", 1)[-1], arr)
            if not dest.flags.writeable:
                # Found now, not by np.copyto after earlier entries were overwritten.
                raise ValueError(f"{kind} {key!r} is read-only; nothing was loaded")
            targets.append((dest, arr))
        for dest, arr in targets:
            np.copyto(dest, arr, casting="unsafe")  # into the existing array: views stay valid
        return IncompatibleKeys(missing, unexpected)

    # --- Keras-style weights --------------------------------------------------------------------
    def get_weights(self):
        """Return copies of the weights in Keras's layout: kernels (in, out) or (*k, in, out),
        then biases."""
        return [owner._to_keras(p.data).copy() for owner, p in self._owned_parameters()]

    def _owned_parameters(self):
        # (the module that holds it, parameter), in parameters() order.
        seen = set()
        for _, m in self.named_modules():
            for p in m._parameters.values():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield m, p

    def _to_keras(self, arr):
        """One of this module's own parameters in Keras's layout (a view): a dense weight stored
        (out, in) is Keras's kernel (in, out); layers that store another layout override this."""
        return arr.T if arr.ndim == 2 else arr

    def _from_keras(self, arr):
        """The inverse of `_to_keras`."""
        return arr.T if arr.ndim == 2 else arr

    def _num_weights(self):
        # The arrays get_weights returns: parameters (counted before a lazy layer is built too).
        return sum(1 for _, _, kind, _ in self._state_entries() if kind == "parameter")

    def _build_from_weights(self, weights):
        pass

    def _check_weights(self, weights, who_=None):
        # Returns the weights converted to the internal (out, in) layout, ready to copy.
        name = who_ or type(self).__name__
        params = list(self._owned_parameters())
        if len(weights) != len(params):
            raise ValueError(f"{name}.set_weights expects {len(params)} arrays, got {len(weights)}")
        out = []
        for i, (w, (owner, p)) in enumerate(zip(weights, params)):
            arr = numeric_array(w, f"{name}.set_weights", f"weight {i}")
            want = owner._to_keras(p.data).shape
            if arr.shape != want:
                raise ValueError(f"{name}.set_weights: weight {i} has shape {arr.shape}, expected {want}")
            out.append((p, owner._from_keras(arr)))
        return out

    def set_weights(self, weights):
        """Set parameters from Keras-layout arrays (kernel (in, out), bias (out,)); all are checked
        before any is written."""
        weights = list(weights)
        self._build_from_weights(weights)
        for p, arr in self._check_weights(weights):
            np.copyto(p.data, arr, casting="unsafe")

    # --- config and printing --------------------------------------------------------------------
    @classmethod
    def config_parameters(cls, config, input_shape):
        """(parameters, per-sample output shape or None) that a `get_config()` output asks for,
        read without building anything: `load` refuses a file whose architecture would allocate far
        more than it stores. Layers without parameters keep the shape."""
        return 0, input_shape

    def get_config(self):
        """JSON-able description {"class": name, **constructor arguments}; see
        `_registry.layer_from_config`. Holds "name" when one was given."""
        return self._with_name({"class": type(self).__name__})

    def _with_name(self, config):
        if self._name is not None:
            config["name"] = self._name
        return config

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = [(name, m) for name, m in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


_REGISTERED = (Parameter, Module)
