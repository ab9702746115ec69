"""Dropout: in training mode each element is zeroed with probability p and the rest scaled by
1 / (1 - p) (inverted dropout); in inference mode it is the identity.

The mask comes from lamina's counter-based generator (`_random.dropout_counters`): element i of a
call uses counter `start + i`, so the mask is the same for any thread count and for the native
plan and the layer-by-layer path, and backward recomputes it instead of storing it.
"""
from .. import _random, _registry, ops
from .._checks import as_grad, as_input, check_number
from ..module import Module, Saved


class Dropout(Module):
    r"""Randomly zeroes elements in training: :math:`y = x \cdot m / (1 - p)`, :math:`m_i \sim
    \mathrm{Bernoulli}(1 - p)`; backward: :math:`dx = dy \cdot m / (1 - p)`. Identity in inference
    mode (`eval()`, `predict`, `evaluate`).

    Args:
        p (float): probability of an element being zeroed, in [0, 1). Default: 0.5.

    Shape:
        - Input: (B, *) float32 or float64 (integers are cast to float32). Output: same.

    Example:
        >>> _ = lm.manual_seed(0)
        >>> y = Dropout(0.5)(np.ones((2, 4)))
        >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
        True
    """

    _CONFIG_KEYS = ("p",)

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.p = check_number(p, "Dropout: p", high=1.0, high_open=True)
        self._saved = Saved()  # x, and extra: (key, first counter) of a training-mode forward

    def forward(self, x):
        x = as_input(x, None, self, min_ndim=1, what="(batch, ...)")
        s = self._saved
        s.x, s.extra = x, _random.dropout_counters(x.size) if self.training else None
        return x if s.extra is None else ops.dropout(x, self.p, *s.extra)

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = as_grad(dy, s.x.dtype, self, s.x.shape)
        return dy if s.extra is None else ops.dropout_backward(dy, self.p, *s.extra)

    def plan_step(self, input_shape=None):
        return {"kind": "dropout", "params": {}, "attrs": {"p": self.p}}

    def get_config(self):
        return self._with_name({"class": "Dropout", "p": self.p})

    def extra_repr(self):
        return f"p={self.p}"


_registry.register(Dropout)
