"""Every argument check of lamina, once: the ops and the reference, the layers, losses, optimizers
and training loops all call these, so the same bad input gets the same message everywhere.
Messages name the op or layer, the argument, the expected and the given value or shape.
"""
import math
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The activations the GEMM epilogue can apply (lamina.ops.gemm/linear's `activation=`).
EPILOGUE_ACTIVATIONS = (None, "relu", "sigmoid", "tanh")

# Every activation by name: what its backward needs (the saved output "y" or the input "x"),
# and its keyword arguments with their defaults. Layers, the Keras `activation=` argument and
# the native plan all read this one table.
ACTIVATION_KINDS = {
    "relu": ("y", {}),
    "sigmoid": ("y", {}),
    "tanh": ("y", {}),
    "softmax": ("y", {}),
    "log_softmax": ("y", {}),
    "leaky_relu": ("x", {"negative_slope": 0.01}),
    "gelu": ("x", {"approximate": "none"}),
}
ROW_ACTIVATIONS = ("softmax", "log_softmax")  # over the last axis: rows of a 2-D kernel

# The ops that lamina.ops (native) and lamina.reference (NumPy) both define, name for name.
OP_NAMES = (
    "matmul",
    "gemm",
    "linear",
    "linear_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "gelu",
    "gelu_backward",
    "log_softmax",
    "log_softmax_backward",
    "nll",
    "dropout",
    "dropout_backward",
    "cross_entropy",
    "binary_cross_entropy",
    "mse",
    "probability_cross_entropy",
    "probability_binary_cross_entropy",
    "sgd_step",
    "adam_step",
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "layer_norm",
    "layer_norm_backward",
    "rnn",
    "rnn_backward",
    "lstm",
    "lstm_backward",
    "gru",
    "gru_backward",
    "embedding",
    "embedding_backward",
)


def as_array(op, name, x):
    arr = np.asarray(x)
    # bool, complex, object and string arrays would be cast silently (or fail deep inside NumPy);
    # integers are accepted and cast, as the layers do.
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must be an integer or floating-point array, got dtype {arr.dtype}")
    # A big-endian float64 is still float64: convert it rather than let it fall to the float32
    # default; a misaligned view (carved from a byte buffer) cannot be read by the kernels.
    if not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def check_ndim(op, name, arr, ndim, what):
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {what}, got shape {arr.shape}")


def check_shape(op, name, arr, expected, why=""):
    if arr.shape != tuple(expected):
        suffix = f" {why}" if why else ""
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected {tuple(expected)}{suffix}")


def check_output(op, name, arr):
    """An array the op writes into: it must be a writeable floating-point ndarray."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array (it is updated in place), got {type(arr).__name__}")
    if arr.dtype.kind != "f":
        # Writing float results back into an integer array would truncate them silently.
        raise TypeError(f"{op}: {name} must be a floating-point array (it is updated in place), got dtype {arr.dtype}")
    if not arr.flags.writeable:
        raise ValueError(f"{op}: {name} is read-only but is updated in place")


def check_activation(op, activation):
    if activation not in EPILOGUE_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of None, 'relu', 'sigmoid', 'tanh', got {activation!r}")


def check_activation_name(layer, activation):
    """None, "linear" or a name in ACTIVATION_KINDS (what Keras's `activation=` accepts here)."""
    if activation is not None and activation != "linear" and activation not in ACTIVATION_KINDS:
        raise ValueError(f"{layer}: unknown activation {activation!r}; "
                         f"expected one of {[None, 'linear', *ACTIVATION_KINDS]}")
    return activation


def check_nonempty(op, name, arr):
    # A mean over zero elements has no value; say so rather than return NaN.
    if arr.size == 0:
        raise ValueError(f"{op}: {name} has shape {arr.shape}; a loss needs at least one element")


def check_unit_interval(op, t):
    bad = ~((t >= 0) & (t <= 1))  # NaN is outside too
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{op}: target{list(i)} = {float(t[i])!r} is outside [0, 1]")


def check_nonnegative(op, **values):
    for name, value in values.items():
        if not value >= 0.0:  # also rejects NaN
            raise ValueError(f"{op}: {name} must be >= 0, got {value!r}")


def check_labels(op, t, batch, classes, allow_float=False):
    """1-D class labels, one per row of (batch, classes) logits, in [0, classes); returned as int64.

    With allow_float (the losses, as PyTorch's users pass them), floats holding whole numbers are
    labels too; the ops take integers only.
    """
    if t.dtype.kind not in ("iuf" if allow_float else "iu"):
        # A float 1.5 is no class; casting it would hide the mistake.
        raise TypeError(f"{op}: 1-D target holds class labels and must be integers, got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"{op}: {t.shape[0] if t.ndim else 0} labels for a batch of {batch} (target has shape "
                         f"{t.shape}, expected ({batch},): one label per row of logits of shape {(batch, classes)})")
    if t.dtype.kind == "f":
        bad = np.flatnonzero(t != np.round(t))  # NaN fails this too
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{op}: label {t[i]} at index {i} is not an integer")
    bad = np.flatnonzero((t < 0) | (t >= classes))
    if bad.size:
        i = int(bad[0])
        v = int(t[i]) if np.isfinite(t[i]) else t[i].item()
        raise ValueError(f"{op}: target[{i}] = {v}; label {v} at index {i} is out of range [0, {classes})")
    return np.ascontiguousarray(t, dtype=np.int64)


def check_sgd_hyper(op, lr, momentum, weight_decay, nesterov, velocity):
    check_nonnegative(op, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if nesterov and momentum == 0:
        raise ValueError(f"{op}: nesterov momentum needs momentum > 0")
    if momentum != 0 and velocity is None:
        raise ValueError(f"{op}: momentum={momentum!r} needs a velocity array (zeros before the first step)")


def check_adam_hyper(op, step, lr, beta1, beta2, eps, weight_decay):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or not 1 <= step < 2**63:
        raise ValueError(f"{op}: step must be an integer in [1, 2**63) (the first step is 1), got {step!r}")
    check_nonnegative(op, lr=lr, eps=eps, weight_decay=weight_decay)
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{op}: {name} must be in [0, 1), got {beta!r}")


# ---------------------------------------------------------------------------------------------
# Scalars: integers, flags, dtypes


def check_int(value, name, minimum=0, error=TypeError):
    """An integer (not a bool) >= minimum, returned as an int.

    A value of the wrong type raises `error` (TypeError by default; the training loops' settings
    raise ValueError, as Keras's do), one below the minimum ValueError.
    """
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}" if minimum else "a non-negative integer"
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be {what}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise error(f"{name} must be {what}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def float_dtype(dtype):
    """float32 or float64 as a NumPy dtype; anything else (None included) is a TypeError."""
    # np.dtype(None) means float64 to NumPy; here None is a mistake, not a default.
    if dtype is None:
        raise TypeError("dtype must be float32 or float64, got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


# ---------------------------------------------------------------------------------------------
# The kernel path asked for by LAMINA_ISA

ISA_NAMES = ("avx512", "avx2", "generic")  # widest first, as the native module names them


def check_isa_request(requested, supported, active):
    """LAMINA_ISA's value (None or "" when unset) against the kernel paths this build can run on this
    CPU (`supported`, widest first). The native module has already chosen its path (`active`: the
    requested one when it can, else its own choice); an unknown name is a ValueError listing the known ones (any
    case), a path the CPU lacks a warning naming the one in use instead. Returns the warning's text,
    or None."""
    if not requested:
        return None
    name = requested.lower()
    if name not in ISA_NAMES:
        raise ValueError(f"LAMINA_ISA={requested!r} is not a kernel path: use one of "
                         f"{', '.join(ISA_NAMES)} (any case), or leave it unset for the best this CPU has")
    if name not in supported:
        return (f"LAMINA_ISA={requested!r} asks for a kernel path this CPU (or this build) cannot run; "
                f"it can run {', '.join(supported)}, and lamina uses {active}")
    return None


# ---------------------------------------------------------------------------------------------
# Layer inputs and gradients


def who(layer):
    """A layer's name in messages: its repr, built only when an error is raised (forward is hot)."""
    return layer if isinstance(layer, str) else repr(layer)


def numeric_array(x, layer, what="input"):
    """np.asarray(x) for real numbers only: bool, complex, object and strings are a TypeError."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{who(layer)}: {what} dtype {arr.dtype} is not supported "
                        f"(use float32, float64 or an integer type)")
    if not arr.dtype.isnative or not arr.flags.aligned:
        # '>f8' is float64 in another byte order, not "some other dtype" to cast to float32; a
        # misaligned view (carved from a byte buffer) cannot be read by the kernels.
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def as_input(x, dtype, layer, features=None, min_ndim=2, ndim=None, what="(batch, features)"):
    """A layer input as a C-contiguous array of `dtype`: at least `min_ndim` dimensions (exactly
    `ndim` when given), and `features` values on its last axis when given.

    dtype None keeps float32/float64 as given and casts anything else numeric to float32.
    """
    if (type(x) is np.ndarray and x.flags.c_contiguous and x.flags.aligned and x.ndim >= min_ndim and (ndim is None or x.ndim == ndim)
            and (features is None or x.shape[-1] == features)
            and (x.dtype == dtype if dtype is not None else x.dtype in FLOAT_DTYPES)):
        return x  # already what the kernels take: the common case, checked in one expression
    arr = numeric_array(x, layer)
    if arr.ndim < min_ndim or (ndim is not None and arr.ndim != ndim):
        # "2-D input (batch, features) or an N-D input (...)": `what` names the other ranks.
        rank = f"{ndim or min_ndim}-D" if ndim is not None or min_ndim == 2 else f"{min_ndim}-D or higher"
        raise ValueError(f"{who(layer)}: expected a {rank} input {what}, got shape {arr.shape}")
    if features is not None and arr.shape[-1] != features:
        expected = (*arr.shape[:-1], features) if arr.ndim > 2 else ("batch", features)
        expected = "(" + ", ".join(map(str, expected)) + ")"
        raise ValueError(f"{who(layer)}: expected input of shape {expected}, got shape {arr.shape}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.float32
    return np.ascontiguousarray(arr, dtype=dtype)


def as_grad(dy, dtype, layer, shape):
    """An upstream gradient: it must have exactly the shape forward returned."""
    if (type(dy) is np.ndarray and dy.shape == shape and dy.dtype == dtype and dy.flags.c_contiguous
            and dy.flags.aligned):
        return dy
    arr = numeric_array(dy, layer, "gradient")
    if arr.shape != tuple(shape):
        raise ValueError(f"{who(layer)}: backward expected a gradient of shape {tuple(shape)} "
                         f"(the shape forward returned), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_finite(a, where, name):
    bad = ~np.isfinite(a)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{where}: {name}{list(i)} = {a[i]!r} is not finite")


def check_number(value, name, low=0.0, high=math.inf, high_open=False):
    """A finite real number in [low, high] (or [low, high)), returned as a float."""
    # float("0.1") would succeed: a string is a mistake, not a number.
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or not (low <= value <= high) or (high_open and value == high):
        bracket = ")" if high_open else "]"
        raise ValueError(f"invalid {name}: {value} (must be in [{low}, {high}{bracket})")
    return value


GELU_FORMS = ("none", "tanh")  # PyTorch's `approximate=`


def check_gelu_form(op, approximate):
    if approximate not in GELU_FORMS:
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


def check_dropout(op, p, key, counter):
    """Dropout's probability in [0, 1) and its generator's key and first counter, 64-bit."""
    check_number(p, f"{op}: p", high=1.0, high_open=True)
    for name, value in (("key", key), ("counter", counter)):
        if check_int(value, f"{op}: {name}") >= 1 << 64:
            raise ValueError(f"{op}: {name} must be below 2**64, got {value}")


def check_flatten_axes(who_, ndim, start_dim, end_dim):
    """Flatten's (start, end) as non-negative axes of a rank-`ndim` input, checked."""
    start = start_dim + ndim if start_dim < 0 else start_dim
    end = end_dim + ndim if end_dim < 0 else end_dim
    if not (0 <= start < ndim and 0 <= end < ndim):
        raise ValueError(f"{who_}: start_dim={start_dim} and end_dim={end_dim} must be axes of the "
                         f"{ndim}-D input (in [{-ndim}, {ndim - 1}])")
    if start > end:
        raise ValueError(f"{who_}: start_dim={start_dim} comes after end_dim={end_dim} for a {ndim}-D input")
    return start, end


# ---- convolution ---------------------------------------------------------------------------------

CONV_LAYOUTS = ("channels_first", "channels_last")
# The activations a convolution fuses into its write-back: every elementwise one.
CONV_ACTIVATIONS = (None, "linear", "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "gelu_tanh")


def check_conv_activation(op, activation):
    if activation not in CONV_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {list(CONV_ACTIVATIONS)}, got {activation!r}")
    return None if activation == "linear" else activation


def _int_tuple(op, name, value, length):
    try:
        t = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a tuple of {length} ints, got {value!r}") from None
    if len(t) != length:
        raise ValueError(f"{op}: {name} must be a tuple of {length} ints, got {value!r}")
    return t


def conv2d_geometry(op, x_shape, w_shape, stride, padding, dilation, groups, layout):
    """Checks a 2-D convolution's arguments and returns its geometry as a dict: N, C, H, W, Cout,
    KH, KW, Ho, Wo, stride, padding (top, bottom, left, right), dilation, groups, layout."""
    if layout not in CONV_LAYOUTS:
        raise ValueError(f"{op}: layout must be 'channels_first' or 'channels_last', got {layout!r}")
    stride = _int_tuple(op, "stride", stride, 2)
    padding = _int_tuple(op, "padding", padding, 4)
    dilation = _int_tuple(op, "dilation", dilation, 2)
    groups = check_int(groups, f"{op}: groups", minimum=1)
    if len(x_shape) != 4:
        what = "(N, C, H, W)" if layout == "channels_first" else "(N, H, W, C)"
        raise ValueError(f"{op}: x must be 4-D {what}, got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        what = "(Cout, C/groups, kh, kw)" if layout == "channels_first" else "(kh, kw, C/groups, Cout)"
        raise ValueError(f"{op}: weight must be 4-D {what}, got shape {tuple(w_shape)}")
    if min(stride) < 1 or min(dilation) < 1 or groups < 1:
        raise ValueError(f"{op}: stride, dilation and groups must be >= 1, got stride {stride}, "
                         f"dilation {dilation}, groups {groups}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {padding}")
    if layout == "channels_first":
        N, C, H, W = x_shape
        Cout, Cg, KH, KW = w_shape
    else:
        N, H, W, C = x_shape
        KH, KW, Cg, Cout = w_shape
    if KH < 1 or KW < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, got weight of shape {tuple(w_shape)}")
    if C % groups or Cout % groups:
        raise ValueError(f"{op}: in_channels {C} and out_channels {Cout} must be divisible by groups {groups}")
    if Cg != C // groups:
        raise ValueError(f"{op}: weight of shape {tuple(w_shape)} has {Cg} input channels per group, "
                         f"expected {C // groups} for x of shape {tuple(x_shape)} and groups {groups}")
    top, bottom, left, right = padding
    span_h = dilation[0] * (KH - 1) + 1
    span_w = dilation[1] * (KW - 1) + 1
    if H + top + bottom < span_h or W + left + right < span_w:
        raise ValueError(f"{op}: kernel larger than the padded input: input {H}x{W} padded to "
                         f"{H + top + bottom}x{W + left + right}, dilated kernel {span_h}x{span_w}")
    Ho = (H + top + bottom - span_h) // stride[0] + 1
    Wo = (W + left + right - span_w) // stride[1] + 1
    return dict(N=N, C=C, H=H, W=W, Cout=Cout, KH=KH, KW=KW, Ho=Ho, Wo=Wo, stride=stride,
                padding=padding, dilation=dilation, groups=groups, layout=layout)


def conv2d_output_shape(g):
    if g["layout"] == "channels_first":
        return (g["N"], g["Cout"], g["Ho"], g["Wo"])
    return (g["N"], g["Ho"], g["Wo"], g["Cout"])
# ---------------------------------------------------------------------------------------------
# Pooling geometry (lamina.ops.pooling and lamina.reference.pooling)

POOL_LAYOUTS = ("channels_first", "channels_last")
_POOL_MAX = 2 ** 31  # sizes, strides, paddings and dilations below it (as the native kernels take)


def check_int_tuple(op, name, value, n, minimum):
    """A tuple (or list) of n integers in [minimum, 2**31), returned as a tuple of ints."""
    if not isinstance(value, (tuple, list)) or len(value) != n or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in value):
        raise TypeError(f"{op}: {name} must be a tuple of {n} ints, got {value!r}")
    out = tuple(int(v) for v in value)
    if any(not minimum <= v < _POOL_MAX for v in out):
        raise ValueError(f"{op}: {name} must hold integers in [{minimum}, 2**31), got {out}")
    return out


def check_pool_layout(op, layout):
    if layout not in POOL_LAYOUTS:
        raise ValueError(f"{op}: layout must be 'channels_first' or 'channels_last', got {layout!r}")
    return layout


def pool_plane(op, name, shape, layout):
    """(N, C, H, W) of a 4-D shape in `layout`."""
    check_pool_layout(op, layout)
    if len(shape) != 4:
        dims = "(N, C, H, W)" if layout == "channels_first" else "(N, H, W, C)"
        raise ValueError(f"{op}: {name} must be 4-D {dims} ({layout}), got shape {tuple(shape)}")
    n, a, b, c = (int(d) for d in shape)
    return (n, a, b, c) if layout == "channels_first" else (n, c, a, b)


def pool_output_length(size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode):
    """PyTorch's pooling output length along one axis (floor or ceil division; with ceil_mode the
    last window is dropped when it starts at or past size + pad_begin)."""
    num = size + pad_begin + pad_end - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = num // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def check_pool2d(op, shape, layout, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """(N, C, H, W, Ho, Wo) for a pooling of an input of `shape`, every argument checked: sizes in
    range, a kernel that fits the padded input, and no window lying entirely in the padding."""
    n, c, h, w = pool_plane(op, "x", shape, layout)
    kernel = check_int_tuple(op, "kernel", kernel, 2, 1)
    stride = check_int_tuple(op, "stride", stride, 2, 1)
    padding = check_int_tuple(op, "padding", padding, 4, 0)
    dilation = check_int_tuple(op, "dilation", dilation, 2, 1)
    check_flag(ceil_mode, f"{op}: ceil_mode")
    if not (1 <= h < _POOL_MAX and 1 <= w < _POOL_MAX):
        raise ValueError(f"{op}: input height and width must be >= 1, got {h} x {w}")
    top, bottom, left, right = padding
    ho = pool_output_length(h, kernel[0], stride[0], top, bottom, dilation[0], bool(ceil_mode))
    wo = pool_output_length(w, kernel[1], stride[1], left, right, dilation[1], bool(ceil_mode))
    if ho < 1 or wo < 1:
        raise ValueError(f"{op}: kernel larger than the padded input: input {h} x {w} padded by {padding}, "
                         f"kernel {kernel} with dilation {dilation} gives an output of {ho} x {wo}")
    for axis, out, size, k, s, pad, d in (("rows", ho, h, kernel[0], stride[0], top, dilation[0]),
                                          ("columns", wo, w, kernel[1], stride[1], left, dilation[1])):
        def empty(o):  # no cell start + i*d (0 <= i < k) in [0, size)
            start = o * s - pad
            first = 0 if start >= 0 else -(start // d)  # ceil(-start / d)
            return first >= k or start + first * d >= size
        # Windows starting in the input hold a cell; those starting past it (only the last can)
        # none; of those starting in the leading padding, the first has the fewest cells in the
        # input when its cells are contiguous (d == 1), else each is checked.
        leading = range(min(out, pad // s + 1) if d > 1 else 1)
        bad = next((o for o in [out - 1, *leading] if empty(o)), None)
        if bad is not None:
            raise ValueError(f"{op}: window {bad} along the {axis} lies entirely in the padding (input {size}, "
                             f"padding {pad}, kernel {k}, stride {s}, dilation {d})")
    if ho * wo >= 2 ** 48:
        raise ValueError(f"{op}: output plane of {ho} x {wo} is too large")
    return n, c, h, w, ho, wo


def check_divisor_override(op, divisor_override):
    if divisor_override is None:
        return None
    return check_int_tuple(op, "divisor_override", (divisor_override,), 1, 1)[0]


def check_output_size(op, output_size):
    return check_int_tuple(op, "output_size", output_size, 2, 1)


def check_eps(op, eps):
    """A normalisation's epsilon: finite and > 0 (it keeps 1 / sqrt(var + eps) finite)."""
    eps = check_number(eps, f"{op}: eps")
    if eps <= 0.0:
        raise ValueError(f"{op}: eps must be > 0, got {eps}")
    return eps


def channel_view(op, shape, axis):
    """Batch norm's view (outer, C, inner) of an array of `shape` with channels on `axis`
    (negative counts from the end): C = shape[axis], outer and inner the products before and after."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"{op}: x must have a batch axis and a channel axis, got shape {tuple(shape)}")
    axis = check_int(axis, f"{op}: axis", minimum=-ndim)
    a = axis + ndim if axis < 0 else axis
    if not 1 <= a < ndim:
        raise ValueError(f"{op}: axis {axis} is not a channel axis of shape {tuple(shape)} "
                         f"(axis 0 is the batch)")
    return math.prod(shape[:a]), shape[a], math.prod(shape[a + 1:])


def check_channel_vector(op, name, arr, channels):
    if arr is not None and arr.shape != (channels,):
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected ({channels},) (one per channel)")


def check_batch_norm(op, shape, axis, weight, bias, running_mean, running_var, training, momentum, eps):
    """Batch norm's arguments, checked; returns the view (outer, C, inner)."""
    outer, channels, inner = channel_view(op, shape, axis)
    for name, arr in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                      ("running_var", running_var)):
        check_channel_vector(op, name, arr, channels)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var go together (one of them is None)")
    check_flag(training, f"{op}: training")
    if not training and running_mean is None:
        raise ValueError(f"{op}: inference mode (training=False) needs running_mean and running_var")
    if training and outer * inner < 2:
        raise ValueError(f"{op}: a training-mode batch norm needs more than one value per channel, "
                         f"got input of shape {tuple(shape)}")
    check_number(momentum, f"{op}: momentum", high=1.0)
    check_eps(op, eps)
    return outer, channels, inner


def layer_norm_view(op, shape, normalized_shape):
    """Layer norm's view (rows, cols): the trailing dims `normalized_shape` (an int or a tuple)
    of `shape` are the cols each row normalises."""
    dims = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    for d in dims:
        check_int(d, f"{op}: normalized_shape", minimum=1)
    dims = tuple(int(d) for d in dims)
    if not dims or tuple(shape[len(shape) - len(dims):]) != dims or len(dims) > len(shape):
        raise ValueError(f"{op}: normalized_shape {dims} does not match the trailing dims of the input's "
                         f"shape {tuple(shape)}")
    cols = math.prod(dims)
    return math.prod(shape) // cols, cols, dims


# ---- recurrent layers and embedding ----------------------------------------------------------------

# Gates per cell, in PyTorch's order: the rows of weight_ih / weight_hh are these blocks of H.
RECURRENT_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
RNN_NONLINEARITIES = ("tanh", "relu")


def check_nonlinearity(op, nonlinearity):
    if nonlinearity not in RNN_NONLINEARITIES:
        raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def recurrent_geometry(op, cell, x_shape, w_ih_shape, w_hh_shape):
    """(T, N, I, H) of one recurrent layer over a time-major input x (T, N, I) with weight_ih
    (G*H, I) and weight_hh (G*H, H), G the cell's gate count; every size checked."""
    g = RECURRENT_GATES[cell]
    blocks = "" if g == 1 else f"{g}*"
    if len(x_shape) != 3:
        raise ValueError(f"{op}: x must be 3-D (time, batch, input_size), got shape {tuple(x_shape)}")
    if len(w_ih_shape) != 2 or len(w_hh_shape) != 2:
        raise ValueError(f"{op}: weight_ih and weight_hh must be 2-D ({blocks}hidden_size, input_size) and "
                         f"({blocks}hidden_size, hidden_size), got {tuple(w_ih_shape)} and {tuple(w_hh_shape)}")
    T, N, I = (int(d) for d in x_shape)
    rows, H = int(w_hh_shape[0]), int(w_hh_shape[1])
    if H < 1:
        raise ValueError(f"{op}: hidden size must be >= 1, got weight_hh of shape {tuple(w_hh_shape)}")
    if rows != g * H:
        raise ValueError(f"{op}: weight_hh has shape {tuple(w_hh_shape)}, expected ({g * H}, {H}) "
                         f"({blocks}hidden_size rows for hidden size {H})")
    if tuple(w_ih_shape) != (g * H, I):
        raise ValueError(f"{op}: weight_ih has shape {tuple(w_ih_shape)}, expected ({g * H}, {I}) for x of "
                         f"shape {tuple(x_shape)} (input_size {I}) and hidden size {H}")
    if T < 1:
        raise ValueError(f"{op}: zero-length sequence: x has shape {tuple(x_shape)} (time, batch, input_size)")
    if N < 1:
        raise ValueError(f"{op}: empty batch: x has shape {tuple(x_shape)} (time, batch, input_size)")
    if I < 1:
        raise ValueError(f"{op}: input_size must be >= 1, got x of shape {tuple(x_shape)}")
    return T, N, I, H


def check_recurrent_vector(op, name, arr, length):
    if arr is not None and arr.shape != (length,):
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected ({length},)")


def check_state(op, name, arr, N, H):
    """An initial or final state (h0, c0, dh_n, dc_n): (batch, hidden_size)."""
    if arr is not None and arr.shape != (N, H):
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected (batch, hidden_size) = ({N}, {H})")


def check_indices(op, indices, num_embeddings):
    """Embedding indices: integers (any shape) in [0, num_embeddings), returned as int64."""
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {indices.dtype}")
    if indices.size:
        bad = np.flatnonzero((indices.reshape(-1) < 0) | (indices.reshape(-1) >= num_embeddings))
        if bad.size:
            i = np.unravel_index(int(bad[0]), indices.shape)
            raise ValueError(f"{op}: indices{list(int(k) for k in i)} = {int(indices[i])} is out of range "
                             f"[0, {num_embeddings}) (num_embeddings {num_embeddings})")
    return np.ascontiguousarray(indices, dtype=np.int64)


def check_padding_idx(op, padding_idx, num_embeddings):
    if padding_idx is None:
        return None
    padding_idx = check_int(padding_idx, f"{op}: padding_idx", minimum=-(2**63))
    if not 0 <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be in [0, {num_embeddings}) (num_embeddings), got {padding_idx}")
    return padding_idx
