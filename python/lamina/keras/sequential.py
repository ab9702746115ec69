"""Keras's `Sequential` and `Input`: lamina's container, with a `summary()` that prints."""
from .. import sequential as _core

Input = _core.Input


class Sequential(_core.Sequential):
    """Keras's `Sequential`: lamina's container with Keras's `summary()`, which prints (through
    `print_fn` when given) and names rows by layer name."""

    def _summary_row_name(self, index, layer):
        return f"{layer.name} ({type(layer).__name__})"

    def summary(self, print_fn=print):
        return super().summary(print_fn=print_fn)


__all__ = ["Input", "Sequential"]
