"""Sliding-window geometry that convolution and pooling share: sizes given as an int or a tuple,
padding given by name ('valid', 'same', 'causal') or by size, and the output length of a window
slid over a padded axis. Every layer works on 2-D views: a 1-D layer is a 2-D one with height 1.
"""
import math

from .._checks import check_int


class Layout:
    """Where a conv or pooling layer's channels and spatial axes sit in its (batch, ...) input:
    `rank` spatial axes (1 or 2), channels first (PyTorch's default) or last (Keras's)."""

    rank = 2
    channels_last = False

    @property
    def _layout(self):
        return "channels_last" if self.channels_last else "channels_first"

    @property
    def _what(self):
        axes = "L" if self.rank == 1 else "H, W"
        return f"(batch, {axes}, channels)" if self.channels_last else f"(batch, channels, {axes})"

    def _spatial(self, shape):
        return tuple(shape[1:-1]) if self.channels_last else tuple(shape[2:])

    def _channels(self, shape):
        return shape[-1] if self.channels_last else shape[1]

    def _with_spatial(self, shape, outs):
        """`shape` with its spatial sizes replaced by `outs`."""
        return (shape[0], *outs, shape[-1]) if self.channels_last else (*shape[:2], *outs)

    def _shape4(self, shape):
        """A 1-D layer's (batch, ...) shape as the 2-D kernels take it: height 1 inserted."""
        if self.rank == 2:
            return tuple(shape)
        return (shape[0], 1, *shape[1:]) if self.channels_last else (*shape[:2], 1, shape[2])


def tuple_of(value, n, name, layer, minimum=1):
    """An int or an n-sequence of ints (each >= minimum) as an n-tuple: PyTorch's `_pair`."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{layer}: {name} must be an int or {n} ints, got {value!r}")
        return tuple(check_int(v, f"{layer}: {name}", minimum, error=ValueError) for v in value)
    return (check_int(value, f"{layer}: {name}", minimum, error=ValueError),) * n


def same_padding(size, kernel, stride, dilation):
    """(before, after) so that the output has ceil(size / stride) cells, the odd cell at the end:
    Keras's (TensorFlow's) 'same'; with stride 1 it is PyTorch's padding='same' too."""
    span = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, sizes, kernel, stride, dilation):
    """Per spatial axis (before, after): padding is 'valid', 'same', 'causal' (1-D: all of it
    before) or a tuple of symmetric sizes."""
    if padding == "valid":
        return tuple((0, 0) for _ in sizes)
    if padding == "same":
        return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation))
    if padding == "causal":
        return tuple((d * (k - 1), 0) for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in padding)


def output_length(size, kernel, stride, dilation, before, after, ceil_mode=False):
    """Windows that fit along one padded axis; with ceil_mode a last partial window counts when it
    starts inside the input or its leading padding (PyTorch's rule)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    n = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # floor division, as PyTorch's div_rtn
    if ceil_mode and (n - 1) * stride >= size + before:
        n -= 1
    return max(n, 0)


def check_fits(layer, sizes, kernel, dilation, pads, outs):
    """A ValueError naming the layer and the sizes when the kernel is larger than the padded input."""
    if min(outs) < 1:
        padded = tuple(n + b + a for n, (b, a) in zip(sizes, pads))
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ValueError(f"{layer}: kernel of size {span} (dilation included) is larger than the "
                         f"padded input of size {padded} (input {tuple(sizes)})")


def as_2d(shape_or_tuple, rank, fill):
    """A 1-D layer's per-axis values as 2-D (height first): (x,) -> (fill, x)."""
    return tuple(shape_or_tuple) if rank == 2 else (fill, *shape_or_tuple)


def flat_padding(pads2d):
    """((top, bottom), (left, right)) -> (top, bottom, left, right), the ops' form."""
    (t, b), (l, r) = pads2d
    return (t, b, l, r)
