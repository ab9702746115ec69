"""Flatten: merges the axes start_dim..end_dim of its input into one (a view, never a copy).

PyTorch's `Flatten()` of an (N, C, H, W) batch gives C,H,W order; Keras's `Flatten()` of an
(N, H, W, C) batch gives H,W,C order: both are the row-major order of the array as it is laid out.
"""
import math
from typing import ClassVar

from .. import _registry
from .._checks import as_grad, as_input, check_flatten_axes, check_int
from ..module import Module, Saved


class Flatten(Module):
    r"""Flattens a contiguous range of axes: (B, d1, ..., dn) -> (B, d1 * ... * dn) by default.

    Args:
        start_dim (int): first axis to flatten (counted with the batch axis as 0; negative from
            the end). Default: 1.
        end_dim (int): last axis to flatten. Default: -1.

    Shape:
        - Input: (B, *). Output: the axes start_dim..end_dim multiplied into one.

    Example:
        >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
        (2, 60)
    """

    _CONFIG_KEYS: ClassVar[tuple[str, ...]] = ("start_dim", "end_dim")

    def __init__(self, start_dim=1, end_dim=-1, name=None):
        super().__init__(name)
        self.start_dim = check_int(start_dim, "Flatten: start_dim", minimum=-(2**31))
        self.end_dim = check_int(end_dim, "Flatten: end_dim", minimum=-(2**31))
        self._saved = Saved()

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        start, end = check_flatten_axes(repr(self), len(shape), self.start_dim, self.end_dim)
        merged = shape[start:end + 1]
        size = None if any(d is None for d in merged) else math.prod(merged)
        return (*shape[:start], size, *shape[end + 1:])

    def forward(self, x):
        x = as_input(x, None, self, min_ndim=1, what="(batch, ...)")
        self._saved.x = x
        return x.reshape(self.output_shape(x.shape))

    def backward(self, dy):
        x = self._saved.x
        if x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        return as_grad(dy, x.dtype, self, self.output_shape(x.shape)).reshape(x.shape)

    def plan_step(self, input_shape=None):
        return {"kind": "flatten", "params": {}, "attrs": {"start_dim": self.start_dim, "end_dim": self.end_dim}}

    @classmethod
    def config_parameters(cls, config, input_shape):
        if input_shape is None:
            return 0, None
        return 0, cls(config.get("start_dim", 1), config.get("end_dim", -1)).output_shape((1, *input_shape))[1:]

    def get_config(self):
        return self._with_name({"class": "Flatten", "start_dim": self.start_dim, "end_dim": self.end_dim})

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


_registry.register(Flatten)
