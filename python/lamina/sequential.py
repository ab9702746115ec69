"""`Sequential`: a chain of layers, written PyTorch's way (`Sequential(*layers)`) or Keras's way
(`Sequential([layers])`). Forward runs the layers in order, backward in reverse; parameter names,
state_dict keys and repr follow PyTorch; summary, get/set_weights, compile and fit follow Keras.
"""
from . import _changes, training
from .layers import Module, _check_shape, layer_from_config


def _at_layer(index, err):
    # Re-raise shape/type errors with the position of the layer, keeping the exception type.
    return type(err)(f"Sequential layer {index}: {err}")


class Sequential(Module):
    r"""A container that applies its layers in order: :math:`y = f_{n-1}(\dots f_1(f_0(x)))`.

    Layers whose input size can be inferred from the layer before them (for example a `Dense`
    without `input_shape` after a layer with a known output) are built at construction, as Keras
    does; a chain whose sizes do not fit raises ValueError naming the layer.

    Args:
        *layers (Module): the layers, or a single list/tuple of them.

    Shape:
        - Input: (B, in_features of the first layer). Output: (B, out_features of the last layer).

    Example:
        >>> model = Sequential(Linear(784, 30), ReLU(), Linear(30, 1))
        >>> model.num_parameters()
        23581
        >>> list(model.state_dict())
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self._layers = []
        for layer in layers:
            self._check_new(layer)
            self._layers.append(layer)
        self._propagate((None, None), build=True)

    def __getstate__(self):
        # copy.deepcopy and pickle leave out the cached native plan: it points at this model's
        # arrays and cannot be copied; a copy builds its own on its first compiled step.
        state = self.__dict__.copy()
        state.pop("_native_plan", None)
        return state

    def _check_new(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential takes lamina layers (Module instances), "
                            f"got {type(layer).__name__}")
        if layer is self or any(layer is other for other in self._layers):
            # One object in two places would share one forward cache and break backward.
            raise ValueError(f"Sequential: the same layer object {layer!r} appears twice; "
                             f"create a separate layer instead")

    def _propagate(self, shape, build):
        """Walk the chain with a (batch, features) shape, checking that the layers fit; with
        build=True also build lazy layers whose input size is known from the chain's input.

        Building stops at the first layer that stays unbuilt: a later layer could be sized from
        that layer's output, but a half-built model would hand an optimizer half its parameters.
        """
        for i, layer in enumerate(self._layers):
            try:
                if build and shape[1] is not None and not layer.built:
                    layer.build(shape)
                build = build and layer.built
                shape = layer.output_shape(shape)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return shape

    # --- container protocol ---------------------------------------------------------------------
    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self._layers[index])
        return self._layers[index]

    def append(self, layer):
        """Add a layer at the end (built now if its input size is known); returns self."""
        self._check_new(layer)
        self._layers.append(layer)
        _changes.happened()  # a compiled plan no longer covers every layer
        try:
            self._propagate((None, None), build=True)
        except (ValueError, TypeError):
            self._layers.pop()
            raise
        return self

    # --- forward / backward -----------------------------------------------------------------------
    def forward(self, x):
        for i, layer in enumerate(self._layers):
            try:
                x = layer(x)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return x

    def backward(self, dy):
        """Backpropagate dL/dy through every layer (in reverse); returns dL/dx."""
        for i in range(len(self._layers) - 1, -1, -1):
            try:
                dy = self._layers[i].backward(dy)
            except (ValueError, TypeError) as e:
                raise _at_layer(i, e) from e
        return dy

    # --- parameters, state, mode ------------------------------------------------------------------
    def named_parameters(self):
        """Yield ("<index>.<name>", Parameter), e.g. "0.weight", "0.bias", "2.weight" (PyTorch keys)."""
        for i, layer in enumerate(self._layers):
            for name, p in layer.named_parameters():
                yield f"{i}.{name}", p

    def _state_keys(self):
        return [f"{i}.{k}" for i, layer in enumerate(self._layers) for k in layer._state_keys()]

    def _build_from_state(self, state, prefix):
        for i, layer in enumerate(self._layers):
            layer._build_from_state(state, f"{prefix}{i}.")
            # Once one layer is built the rest follow from the chain, not from the file, so a
            # state whose shapes do not chain is caught by the shape check.
            self._propagate((None, None), build=True)

    def train(self, mode=True):
        super().train(mode)
        for layer in self._layers:
            layer.train(mode)
        return self

    @property
    def built(self):
        return all(layer.built for layer in self._layers)

    def build(self, input_shape):
        """Build every lazy layer for inputs of `input_shape` = (batch, features)."""
        self._propagate(_check_shape(input_shape, "Sequential"), build=True)

    def output_shape(self, input_shape):
        return self._propagate(_check_shape(input_shape, "Sequential"), build=False)

    # --- Keras-style weights -------------------------------------------------------------------------
    def get_weights(self):
        """All layers' weights in Keras's layout: [kernel0 (in, out), bias0, kernel1, ...]."""
        return [w for layer in self._layers for w in layer.get_weights()]

    def _num_weights(self):
        return sum(layer._num_weights() for layer in self._layers)

    def _split(self, weights):
        if len(weights) != self._num_weights():
            raise ValueError(f"Sequential.set_weights expects {self._num_weights()} arrays, "
                             f"got {len(weights)}")
        chunks, start = [], 0
        for layer in self._layers:
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
            self._propagate((None, None), build=True)

    def _check_weights(self, weights, who=None):
        out = []
        for i, (layer, chunk) in enumerate(zip(self._layers, self._split(weights))):
            out.extend(layer._check_weights(chunk, f"Sequential layer {i} ({type(layer).__name__})"))
        return out

    # --- description -----------------------------------------------------------------------------
    def summary(self):
        """Return a Keras-like table: layer, output shape, parameter count, and the total.

        Example:
            >>> text = Sequential(Linear(4, 3), ReLU()).summary()
            >>> text.splitlines()[-3]
            'Trainable params: 15'
        """
        header = ("Layer (type)", "Output Shape", "Param #")
        rows = []
        shape = (None, None)
        for i, layer in enumerate(self._layers):
            shape = layer.output_shape(shape)
            if shape is not None and shape[1] is None:
                shape_text = "(None, ?)"
            else:
                shape_text = str(shape)
            count = f"{layer.num_parameters():,}" if layer.built else "0 (unbuilt)"
            rows.append((f"{i} ({type(layer).__name__})", shape_text, count))
        widths = [max([len(header[c])] + [len(r[c]) for r in rows]) for c in range(3)]

        def line(cells):
            return (f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   "
                    f"{cells[2]:>{widths[2]}}").rstrip()

        rule_len = sum(widths) + 6
        total = self.num_parameters()
        out = ["Model: Sequential", "_" * rule_len, line(header), "=" * rule_len]
        out += [line(r) for r in rows]
        out += ["=" * rule_len,
                f"Total params: {total:,}",
                f"Trainable params: {total:,}",
                "Non-trainable params: 0",
                "_" * rule_len]
        return "\n".join(out)

    def get_config(self):
        return {"class": "Sequential", "layers": [layer.get_config() for layer in self._layers]}

    @classmethod
    def from_config(cls, cfg):
        """Rebuild a Sequential (architecture only, fresh weights) from `get_config()` output."""
        if not isinstance(cfg, dict) or cfg.get("class") != "Sequential":
            raise ValueError(f"not a Sequential config: {cfg!r:.200}")
        unknown = sorted(str(k) for k in cfg if k not in ("class", "layers"))
        if unknown:
            raise ValueError(f"unknown keys {unknown} in Sequential config")
        layers = cfg.get("layers")
        if not isinstance(layers, list):
            raise ValueError("Sequential config needs a list under 'layers'")
        return cls(*[layer_from_config(c) for c in layers])

    def __repr__(self):
        if not self._layers:
            return "Sequential()"
        lines = []
        for i, layer in enumerate(self._layers):
            inner = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({i}): {inner}")
        return "Sequential(\n" + "\n".join(lines) + "\n)"

    # --- Keras-style training: implemented in lamina.training --------------------------------------
    def compile(self, optimizer=None, loss=None, metrics=None):
        """Attach an optimizer, a loss and metrics for `fit`/`evaluate` (see `lamina.training`)."""
        return training.compile(self, optimizer, loss, metrics)

    def fit(self, x, y=None, **kwargs):
        """Train on (x, y); keyword arguments as in Keras (epochs, batch_size, validation_data, ...)."""
        return training.fit(self, x, y, **kwargs)

    def evaluate(self, x, y=None, **kwargs):
        """Loss (and metrics) on (x, y), without updating the model."""
        return training.evaluate(self, x, y, **kwargs)

    def predict(self, x, batch_size=None):
        """Forward pass over x in batches; returns a NumPy array."""
        return training.predict(self, x, batch_size=batch_size)

    # One step on one batch: forward, loss, backward, optimizer update. Bound directly, without a
    # wrapper method: its frame was 2% of a small network's whole step.
    train_step = training.train_step
