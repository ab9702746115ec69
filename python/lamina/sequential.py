"""`Sequential`: a chain of layers, written PyTorch's way (`Sequential(*layers)`) or Keras's way
(`Sequential([layers], name=...)`, `add`, `pop`, `get_layer`). Forward runs the layers in order,
backward in reverse; parameter names, state_dict keys and repr follow PyTorch; summary, get/set_weights
and training (the `Trainer` mixin: compile, fit, evaluate, predict) follow Keras.
"""
from . import _changes, _registry
from ._checks import check_int
from .module import Module
from .training import Trainer


def _at_layer(index, err):
    # Re-raise shape/type errors with the position of the layer, keeping the exception type.
    return type(err)(f"Sequential layer {index}: {err}")


class Input:
    """Keras's `Input(shape=...)`: the per-sample shape of a model's input, given as the first
    element of a `Sequential` so that every layer is built at construction.

    Example:
        >>> Sequential([Input(shape=(8,)), Dense(4)]).built
        True
    """

    def __init__(self, shape, name=None):
        try:
            dims = tuple(shape)
        except TypeError:
            raise TypeError(f"Input: shape must be a tuple of sizes, got {shape!r}") from None
        self.shape = (None, *(None if d is None else check_int(d, "Input: shape entry", 1) for d in dims))
        self.name = name

    def __repr__(self):
        return f"Input(shape={self.shape[1:]})"


class Sequential(Trainer, Module):
    r"""A container that applies its layers in order: :math:`y = f_{n-1}(\dots f_1(f_0(x)))`.

    Layers whose input size can be inferred from the layer before them (for example a `Dense`
    without `input_shape` after a layer with a known output) are built at construction, as Keras
    does; a chain whose sizes do not fit raises ValueError naming the layer.

    Args:
        *layers (Module): the layers, or a single list/tuple of them; Keras's `Input(shape)` may
            come first.
        name (str or None): the model's name.

    Shape:
        - Input: (B, *) as the first layer takes it. Output: what the last layer gives.

    Example:
        >>> model = Sequential(Linear(784, 30), ReLU(), Linear(30, 1))
        >>> model.num_parameters()
        23581
        >>> list(model.state_dict())
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers, name=None):
        super().__init__(name)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.__dict__["_input"] = None
        if layers and isinstance(layers[0], Input):
            self.__dict__["_input"] = layers[0]
            layers = layers[1:]
        for layer in layers:
            self._check_new(layer)
            self._modules[str(len(self._modules))] = layer
        self._propagate(build=True)

    def __getstate__(self):
        # copy.deepcopy and pickle leave out the cached native plan: it points at this model's
        # arrays and cannot be copied; a copy builds its own on its first compiled step.
        state = self.__dict__.copy()
        state.pop("_native_plan", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def _layers(self):
        return list(self._modules.values())

    def _check_new(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential takes lamina layers (Module instances), "
                            f"got {type(layer).__name__}")
        if layer is self or any(layer is other for other in self._modules.values()):
            # One object in two places would share one forward cache and break backward.
            raise ValueError(f"Sequential: the same layer object {layer!r} appears twice; "
                             f"create a separate layer instead")

    def _input_shape(self):
        return self._input.shape if self._input is not None else (None, None)

    def _propagate(self, shape=None, build=True):
        """Walk the chain with an input shape (batch first; None entries unknown), checking that
        the layers fit; with build=True also build lazy layers whose input size is known.

        Building stops at the first layer that stays unbuilt: a later layer could be sized from
        that layer's output, but a half-built model would hand an optimizer half its parameters.
        """
        shape = self._input_shape() if shape is None else shape
        for i, layer in enumerate(self._modules.values()):
            try:
                if build and shape[-1] is not None and not layer.built:
                    layer.build(shape)
                build = build and layer.built
                shape = layer.output_shape(shape)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return shape

    # --- container protocol ---------------------------------------------------------------------
    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self._layers[index])
        return self._layers[index]

    @property
    def layers(self):
        """The layers, in order (Keras's `model.layers`)."""
        return self._layers

    def append(self, layer):
        """Add a layer at the end (built now if its input size is known); returns self."""
        self._check_new(layer)
        key = str(len(self._modules))
        self._modules[key] = layer
        _changes.happened()  # a compiled plan no longer covers every layer
        try:
            self._propagate(build=True)
        except (ValueError, TypeError):
            del self._modules[key]
            raise
        return self

    def add(self, layer):
        """Keras's `add`: append a layer (an `Input` first sets the model's input shape)."""
        if isinstance(layer, Input):
            if self._modules:
                raise ValueError("Sequential.add: an Input can only come first")
            self.__dict__["_input"] = layer
            return None
        self.append(layer)
        return None

    def pop(self):
        """Keras's `pop`: remove the last layer and return it."""
        if not self._modules:
            raise IndexError("Sequential.pop: the model has no layers")
        layer = self._modules.pop(str(len(self._modules) - 1))
        _changes.happened()
        return layer

    def get_layer(self, name=None, index=None):
        """Keras's `get_layer`: the layer with this name, or at this index."""
        if index is not None:
            index = check_int(index, "get_layer: index", -len(self))
            if index >= len(self):
                raise ValueError(f"get_layer: index {index} is out of range for {len(self)} layers")
            return self._layers[index]
        for layer in self._modules.values():
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self._modules.values()]}")

    # --- forward / backward -----------------------------------------------------------------------
    def forward(self, x):
        for i, layer in enumerate(self._modules.values()):
            try:
                x = layer(x)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return x

    def backward(self, dy):
        """Backpropagate dL/dy through every layer (in reverse); returns dL/dx."""
        layers = self._layers
        for i in range(len(layers) - 1, -1, -1):
            try:
                dy = layers[i].backward(dy)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return dy

    # --- building and state -------------------------------------------------------------------
    def _build_from_state(self, state, prefix):
        for name, layer in self._modules.items():
            layer._build_from_state(state, f"{prefix}{name}.")
            # Once one layer is built the rest follow from the chain, not from the file, so a
            # state whose shapes do not chain is caught by the shape check.
            self._propagate(build=True)

    @property
    def built(self):
        return all(layer.built for layer in self._modules.values())

    def build(self, input_shape):
        """Build every lazy layer for inputs of `input_shape` (batch first)."""
        self._propagate(tuple(input_shape), build=True)

    def output_shape(self, input_shape):
        return self._propagate(tuple(input_shape), build=False)

    # --- Keras-style weights -------------------------------------------------------------------------
    def get_weights(self):
        """All layers' weights in Keras's layout: [kernel0 (in, out), bias0, kernel1, ...]."""
        return [w for layer in self._modules.values() for w in layer.get_weights()]

    def _num_weights(self):
        return sum(layer._num_weights() for layer in self._modules.values())

    def _split(self, weights):
        if len(weights) != self._num_weights():
            raise ValueError(f"Sequential.set_weights expects {self._num_weights()} arrays, "
                             f"got {len(weights)}")
        chunks, start = [], 0
        for layer in self._modules.values():
            n = layer._num_weights()
            chunks.append(weights[start:start + n])
            start += n
        return chunks

    def _build_from_weights(self, weights):
        for i, (layer, chunk) in enumerate(zip(self._layers, self._split(weights))):
            try:
                layer._build_from_weights(chunk)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
            self._propagate(build=True)

    def _check_weights(self, weights, who_=None):
        out = []
        for i, (layer, chunk) in enumerate(zip(self._layers, self._split(weights))):
            out.extend(layer._check_weights(chunk, f"Sequential layer {i} ({type(layer).__name__})"))
        return out

    # --- description -----------------------------------------------------------------------------
    def _summary_row_name(self, index, layer):
        return f"{index} ({type(layer).__name__})"

    def summary(self, print_fn=None):
        """The Keras-like table: each layer's output shape and parameter count, then the totals
        (non-trainable: frozen parameters and buffers such as running statistics).

        Returns the text; with `print_fn` each line is passed to it instead (Keras's form).

        Example:
            >>> text = Sequential(Linear(4, 3), ReLU()).summary()
            >>> text.splitlines()[-3]
            'Trainable params: 15'
        """
        header = ("Layer (type)", "Output Shape", "Param #")
        rows = []
        shape = self._input_shape()
        for i, layer in enumerate(self._modules.values()):
            shape = layer.output_shape(shape)
            shape_text = "(" + ", ".join("?" if d is None else str(d) for d in shape[1:])
            shape_text = "(None, " + shape_text[1:] + ")"
            count = layer.num_parameters() + sum(b.size for b in layer.buffers())
            rows.append((self._summary_row_name(i, layer), shape_text,
                         f"{count:,}" if layer.built else "0 (unbuilt)"))
        widths = [max([len(header[c])] + [len(r[c]) for r in rows]) for c in range(3)]

        def line(cells):
            return (f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   "
                    f"{cells[2]:>{widths[2]}}").rstrip()

        rule_len = sum(widths) + 6
        trainable = sum(p.size for p in self.parameters() if p.requires_grad)
        frozen = sum(p.size for p in self.parameters() if not p.requires_grad)
        frozen += sum(b.size for b in self.buffers())
        title = self._name if self._name is not None else "Sequential"
        out = [f"Model: {title}", "_" * rule_len, line(header), "=" * rule_len]
        out += [line(r) for r in rows]
        out += ["=" * rule_len,
                f"Total params: {trainable + frozen:,}",
                f"Trainable params: {trainable:,}",
                f"Non-trainable params: {frozen:,}",
                "_" * rule_len]
        if print_fn is None:
            return "\n".join(out)
        for text in out:
            print_fn(text)
        return None

    def get_config(self):
        config = {"class": "Sequential", "layers": [layer.get_config() for layer in self._modules.values()]}
        if self._input is not None:
            config["input_shape"] = list(self._input.shape[1:])
        return self._with_name(config)

    @classmethod
    def config_parameters(cls, config, input_shape):
        layers = config.get("layers")
        shape = config.get("input_shape")
        shape = tuple(shape) if isinstance(shape, list) else input_shape
        total = 0
        for layer in layers if isinstance(layers, list) else []:
            count, shape = _registry.layer_class(layer.get("class")).config_parameters(layer, shape)
            total += count
        return total, shape

    @classmethod
    def from_config(cls, cfg):
        """Rebuild a Sequential (architecture only, fresh weights) from `get_config()` output."""
        if not isinstance(cfg, dict) or cfg.get("class") != cls.__name__:
            raise ValueError(f"not a {cls.__name__} config: {cfg!r:.200}")
        unknown = sorted(str(k) for k in cfg if k not in ("class", "layers", "name", "input_shape"))
        if unknown:
            raise ValueError(f"unknown keys {unknown} in {cls.__name__} config")
        layers = cfg.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"{cls.__name__} config needs a list under 'layers'")
        built = [_registry.layer_from_config(c) for c in layers]
        if cfg.get("input_shape") is not None:
            built.insert(0, Input(cfg["input_shape"]))
        return cls(built, name=cfg.get("name"))

    def __repr__(self):
        if not self._modules:
            return "Sequential()"
        return super().__repr__()


_registry.register(Sequential)
