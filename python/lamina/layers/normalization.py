"""Normalization layers: `BatchNorm1d`, `BatchNorm2d`, `LayerNorm` (PyTorch) and
`BatchNormalization`, `LayerNormalization` (Keras), on the native kernels of `ops.normalization`.

The two dialects disagree on nearly every default, and each follows its own original:

==============================  ==============================  ==============================
                                PyTorch (`BatchNorm1d/2d`)      Keras (`BatchNormalization`)
==============================  ==============================  ==============================
channels                        axis 1 (N, C, ...)              axis=-1 (N, ..., C)
momentum                        0.1, weight of the new batch    0.99, weight of the old average
epsilon                         1e-5                            1e-3
running variance takes          unbiased batch variance         biased batch variance
batch statistics when           `training` (or no running ones) training and `trainable`
weights                         weight, bias; running_mean,     gamma, beta, moving_mean,
                                running_var, num_batches_tracked moving_variance
==============================  ==============================  ==============================

Both normalise with the biased batch variance. A running average updates as
``running = running * (1 - f) + batch * f`` with f PyTorch's momentum (1 / batches so far when
momentum is None, a cumulative average), or 1 - Keras's momentum. A Keras layer with
``trainable = False`` runs in inference mode even inside `fit`, as Keras's does.
"""
import math

import numpy as np

from .. import _registry
from .._checks import as_grad, as_input, check_flag, check_int, check_number, float_dtype, numeric_array
from ..module import Module, Saved
from ..ops.normalization import batch_norm, batch_norm_backward, layer_norm, layer_norm_backward
from ..parameter import Parameter


class _Slot:
    """A buffer where `set_weights` expects a parameter: something with a writable `.data`."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _accumulate(param, grad):
    if param is not None and param.requires_grad:
        param.grad += grad


class _BatchNorm(Module):
    """What the three batch-norm layers share: the forward and backward passes, the running
    statistics and the plan step. Subclasses set `_factor()` (the running average's weight of the
    new batch), `_batch_stats()` (when batch statistics are used) and the channel axis."""

    _UNBIASED = True
    num_batches_tracked = None

    def _setup(self, num_features, eps, scale, center, track, dtype):
        self.num_features = num_features
        self.eps = check_number(eps, f"{type(self).__name__}: eps")
        if self.eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {self.eps}")
        self._scale, self._center, self._track = scale, center, track
        self.dtype = float_dtype(dtype)
        self.weight = self.bias = None
        self.running_mean = self.running_var = None
        self._saved = Saved()
        if num_features is not None:
            self._create(num_features)

    def _create(self, channels):
        self.num_features = channels
        dt = self.dtype
        self.weight = Parameter(np.ones(channels, dt)) if self._scale else None
        self.bias = Parameter(np.zeros(channels, dt)) if self._center else None
        if self._track:
            self.register_buffer("running_mean", np.zeros(channels, dt))
            self.register_buffer("running_var", np.ones(channels, dt))
            self._create_counter()

    def _create_counter(self):
        pass

    def _check_loaded(self, name, arr):
        """Running statistics from a state_dict or a file: finite, and a variance not negative."""
        if name in ("running_mean", "running_var") and not np.isfinite(arr).all():
            raise ValueError(f"{self!r}: the loaded {name} is not finite")
        if name == "running_var" and (arr < 0).any():
            raise ValueError(f"{self!r}: the loaded running_var has a negative entry")
        if name == "num_batches_tracked" and (arr < 0).any():
            raise ValueError(f"{self!r}: the loaded num_batches_tracked is negative")

    @property
    def built(self):
        return self.num_features is not None

    def _channel_axis(self, ndim):
        return self.axis % ndim

    def _check_input(self, x):
        """x as the kernels take it, the layer built for it, its channels checked."""
        x = as_input(x, self.dtype, self, min_ndim=2, what=self._what)
        self._check_rank(x.ndim)
        axis = self._channel_axis(x.ndim)
        if not self.built:
            self.build(x.shape)
        if x.shape[axis] != self.num_features:
            raise ValueError(f"{self!r}: expected input {self._what} with {self.num_features} channels on axis "
                             f"{axis}, got shape {x.shape}")
        return x, axis

    def _check_rank(self, ndim):
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"{self!r}: axis {self.axis} is not a channel axis of a {ndim}-D input "
                             f"(axis 0 is the batch)")

    def forward(self, x):
        x, axis = self._check_input(x)
        batch = self._batch_stats()
        tracking = batch and self.training and self.running_mean is not None
        if batch and x.size // self.num_features < 2:
            raise ValueError(f"{self!r}: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        running = (self.running_mean, self.running_var) if tracking or not batch else (None, None)
        y, mean, invstd = batch_norm(x, w, b, *running, training=batch,
                                     momentum=self._factor() if tracking else 0.0, eps=self.eps, axis=axis,
                                     unbiased=self._UNBIASED)
        if tracking and self.num_batches_tracked is not None:
            self.num_batches_tracked[...] += 1  # in place: a compiled plan points at this array
        s = self._saved
        s.x, s.y, s.extra = x, y, (mean, invstd, batch, axis)
        return y

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dy = as_grad(dy, self.dtype, self, s.x.shape)
        mean, invstd, batch, axis = s.extra
        w = None if self.weight is None else self.weight.data
        dx, dw, db = batch_norm_backward(dy, s.x, mean, invstd, w, training=batch, axis=axis)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if all(n is None for n in shape):
            return shape
        self._check_rank(len(shape))
        channels = shape[self._channel_axis(len(shape))]
        if channels is not None and self.built and channels != self.num_features:
            raise ValueError(f"{self!r}: expected input {self._what} with {self.num_features} channels, "
                             f"got shape {shape}")
        return shape

    def plan_step(self, input_shape=None):
        """This layer as a native "batch_norm" step (see _plan.py): the per-sample channel axis,
        the statistics it uses in each mode, and the running statistics it updates in training."""
        if not self.built or input_shape is None:
            return None
        ndim = len(input_shape)
        self._check_rank(ndim)
        stats = "batch" if self._batch_stats() else "running"
        if self.running_mean is None:
            stats = "batch_always"
        buffers = {}
        if self.running_mean is not None:
            buffers = {"running_mean": self.running_mean, "running_var": self.running_var}
            if self.num_batches_tracked is not None:
                buffers["num_batches_tracked"] = self.num_batches_tracked
        momentum = self._plan_momentum()
        return {"kind": "batch_norm", "params": {"weight": self.weight, "bias": self.bias}, "buffers": buffers,
                "attrs": {"axis": self._channel_axis(ndim) - 1, "eps": self.eps, "momentum": momentum,
                          "unbiased": self._UNBIASED, "stats": stats, "activation": None}}

    def _plan_momentum(self):
        return self._factor()


class _TorchBatchNorm(_BatchNorm):
    axis = 1
    _CONFIG_KEYS = ("num_features", "eps", "momentum", "affine", "track_running_stats", "dtype")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if device not in (None, "cpu"):
            raise ValueError(f"{layer}: device={device!r}: lamina runs on the CPU")
        num_features = check_int(num_features, f"{layer}: num_features", 1, error=ValueError)
        self.momentum = None if momentum is None else check_number(momentum, f"{layer}: momentum", high=1.0)
        self.affine = check_flag(affine, "affine")
        self.track_running_stats = check_flag(track_running_stats, "track_running_stats")
        self._setup(num_features, eps, self.affine, self.affine, self.track_running_stats, dtype)

    def _create_counter(self):
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))

    def _batch_stats(self):
        return self.training or self.running_mean is None

    def _factor(self):
        if self.momentum is None:  # a cumulative average over the batches so far, this one included
            return 1.0 / (int(self.num_batches_tracked) + 1)
        return self.momentum

    def _plan_momentum(self):
        return self.momentum  # None: the step reads num_batches_tracked

    @classmethod
    def from_keras(cls, layer):
        """This dialect's layer with a Keras `BatchNormalization`'s state: gamma, beta and the moving
        statistics, epsilon as eps, momentum as 1 - momentum. PyTorch's affine is all or nothing, so
        center and scale must agree. The two cannot agree exactly from then on: PyTorch's running
        variance takes the unbiased batch variance, Keras's the biased one."""
        if not isinstance(layer, BatchNormalization) or not layer.built:
            raise TypeError(f"{cls.__name__}.from_keras expects a built BatchNormalization, got {layer!r}")
        if layer.center != layer.scale:
            raise ValueError(f"{cls.__name__}.from_keras: {layer!r} has center={layer.center} and "
                             f"scale={layer.scale}; PyTorch's affine learns both or neither")
        out = cls(layer.num_features, eps=layer.epsilon, momentum=1.0 - layer.momentum, affine=layer.scale,
                  dtype=layer.dtype)
        _copy_state(out, layer)
        return out

    def _check_rank(self, ndim):
        if ndim not in self._RANKS:
            ranks = " or ".join(f"{r}D" for r in self._RANKS)
            raise ValueError(f"{self!r}: expected {ranks} input {self._what}, got a {ndim}-D input")

    def get_config(self):
        return self._with_name({"class": type(self).__name__, "num_features": self.num_features, "eps": self.eps,
                                "momentum": self.momentum, "affine": self.affine,
                                "track_running_stats": self.track_running_stats, "dtype": self.dtype.name})

    @classmethod
    def config_parameters(cls, config, input_shape):
        n = config.get("num_features")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            return 0, input_shape
        return (2 * n if config.get("affine", True) else 0), input_shape

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, " \
            f"track_running_stats={self.track_running_stats}"
        return s + _dtype_repr(self.dtype)


class BatchNorm1d(_TorchBatchNorm):
    r"""Batch normalization over (N, C) or (N, C, L), PyTorch's `nn.BatchNorm1d`:

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta

    per channel, with the batch's mean and biased variance in training mode (updating the running
    statistics) and the running ones in eval mode.

    Args:
        num_features (int): C.
        eps (float): added to the variance. Default: 1e-5.
        momentum (float or None): weight of the new batch in the running averages
            (``running = (1 - momentum) running + momentum batch``, the variance unbiased); None
            averages all batches so far equally. Default: 0.1.
        affine (bool): learn weight (ones) and bias (zeros). Default: True.
        track_running_stats (bool): keep running_mean (zeros), running_var (ones) and
            num_batches_tracked; without them batch statistics are used in eval mode too.
        dtype: float32 (default) or float64.

    Shape:
        - Input: (N, C) or (N, C, L). Output: same. Training needs more than one value per channel.

    Example:
        >>> bn = BatchNorm1d(3)
        >>> y = bn(np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]], dtype=np.float32))
        >>> np.round(y, 3).tolist(), bn.running_mean.tolist()
        ([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], [0.20000000298023224, 0.4000000059604645, 0.6000000238418579])
    """

    _RANKS = (2, 3)
    _what = "(N, C) or (N, C, L)"


class BatchNorm2d(_TorchBatchNorm):
    r"""Batch normalization over (N, C, H, W), PyTorch's `nn.BatchNorm2d` (arguments as
    `BatchNorm1d`): each channel is normalised over the batch and both spatial axes.

    Example:
        >>> BatchNorm2d(8)(np.random.rand(2, 8, 5, 5)).shape
        (2, 8, 5, 5)
    """

    _RANKS = (4,)
    _what = "(N, C, H, W)"


class BatchNormalization(_BatchNorm):
    r"""Keras's batch normalization: :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
    over `axis` (the channels), with the batch's mean and biased variance while training a
    trainable layer, and the moving averages otherwise (`predict`, `evaluate`, and a layer with
    ``trainable = False``, which runs in inference mode even inside `fit`).

    Args:
        axis (int): the channel axis. Default: -1 (channels_last).
        momentum (float): ``moving = moving * momentum + batch * (1 - momentum)`` (biased variance).
            Default: 0.99.
        epsilon (float): added to the variance. Default: 1e-3.
        center (bool): learn beta (zeros). scale (bool): learn gamma (ones). Default: True.
        dtype: float32 (default) or float64.

    Shape:
        - Input: any rank >= 2 with channels on `axis`; built on the first call. `get_weights()`
          returns [gamma, beta, moving_mean, moving_variance] (the ones that exist).

    Example:
        >>> BatchNormalization()(np.random.rand(4, 6, 6, 3)).shape
        (4, 6, 6, 3)
    """

    _UNBIASED = False
    _what = "(batch, ..., channels on axis)"
    _CONFIG_KEYS = ("axis", "momentum", "epsilon", "center", "scale", "input_shape", "dtype")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, renorm=False, synchronized=False,
                 input_shape=None, dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer) != \
                ("zeros", "ones", "zeros", "ones"):
            raise ValueError(f"{layer}: only the default initializers are supported; set other values with "
                             f"set_weights")
        if any(v is not None for v in (beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)):
            raise ValueError(f"{layer}: regularizers and constraints are not supported")
        if check_flag(renorm, "renorm"):
            raise ValueError(f"{layer}: renorm=True (batch renormalization) is not supported")
        check_flag(synchronized, "synchronized")  # one device: nothing to synchronise
        self.axis = check_int(axis, f"{layer}: axis", minimum=-64)
        if self.axis == 0:
            raise ValueError(f"{layer}: axis 0 is the batch axis")
        self.momentum = check_number(momentum, f"{layer}: momentum", high=1.0)
        self.epsilon = check_number(epsilon, f"{layer}: epsilon")
        self.center, self.scale = check_flag(center, "center"), check_flag(scale, "scale")
        self._setup(None, self.epsilon, self.scale, self.center, True, dtype)
        self.input_shape = None
        if input_shape is not None:
            self.input_shape = tuple(input_shape)
            self.build((None, *self.input_shape))

    # Keras's names for the four arrays.
    gamma = property(lambda self: self.weight)
    beta = property(lambda self: self.bias)
    moving_mean = property(lambda self: self.running_mean)
    moving_variance = property(lambda self: self.running_var)

    def build(self, input_shape):
        shape = tuple(input_shape)
        self._check_rank(len(shape))
        channels = shape[self._channel_axis(len(shape))]
        if channels is None:
            raise ValueError(f"{self!r}: the channel axis of input shape {shape} must be known to build")
        if not self.built:
            self._create(check_int(channels, f"{self!r}: channels", 1, error=ValueError))

    def _batch_stats(self):
        return self.training and self.trainable

    @classmethod
    def from_torch(cls, bn, axis=1):
        """This dialect's layer with a PyTorch-dialect batch norm's state (`BatchNorm1d/2d`; load a
        torch module's state_dict into one first): weight and bias as gamma and beta, the running
        statistics as the moving ones, eps as epsilon, momentum as 1 - momentum; `axis` is where the
        channels are in the data it will see (1 for PyTorch's NCHW, -1 for channels_last). A
        cumulative average (momentum=None) and a layer without running statistics have no Keras
        form. From then on the two differ in one respect: Keras's moving variance takes the biased
        batch variance, PyTorch's the unbiased one."""
        if not isinstance(bn, _TorchBatchNorm):
            raise TypeError(f"{cls.__name__}.from_torch expects a BatchNorm1d or BatchNorm2d, got {bn!r}")
        if bn.momentum is None:
            raise ValueError(f"{cls.__name__}.from_torch: {bn!r} keeps a cumulative average (momentum=None), "
                             f"which Keras's moving averages cannot express")
        if not bn.track_running_stats:
            raise ValueError(f"{cls.__name__}.from_torch: {bn!r} keeps no running statistics")
        out = cls(axis=axis, momentum=1.0 - bn.momentum, epsilon=bn.eps, center=bn.affine, scale=bn.affine,
                  dtype=bn.dtype)
        out._create(bn.num_features)
        _copy_state(out, bn)
        return out

    def _factor(self):
        return 1.0 - self.momentum

    # --- Keras's weights: gamma, beta, moving_mean, moving_variance --------------------------------
    def _keras_arrays(self):
        return [a for a in (self.weight, self.bias) if a is not None] + \
               [_Slot(b) for b in (self.running_mean, self.running_var) if b is not None]

    def get_weights(self):
        return [a.data.copy() for a in self._keras_arrays()]

    def _num_weights(self):
        return 2 + self._scale + self._center

    def _build_from_weights(self, weights):
        if not self.built and weights:
            shape = numeric_array(weights[0], f"{self!r}.set_weights", "weight 0").shape
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f"{self!r}.set_weights: weight 0 has shape {shape}, expected (channels,)")
            self._create(shape[0])

    def _check_weights(self, weights, who_=None):
        name = who_ or type(self).__name__
        if len(weights) != self._num_weights():
            raise ValueError(f"{name}.set_weights expects {self._num_weights()} arrays "
                             f"(gamma, beta, moving_mean, moving_variance as configured), got {len(weights)}")
        out = []
        for i, (w, slot) in enumerate(zip(weights, self._keras_arrays())):
            arr = numeric_array(w, f"{name}.set_weights", f"weight {i}")
            if arr.shape != slot.data.shape:
                raise ValueError(f"{name}.set_weights: weight {i} has shape {arr.shape}, expected {slot.data.shape}")
            if i >= len(weights) - 2 and not np.isfinite(arr).all():
                raise ValueError(f"{name}.set_weights: weight {i} (a moving statistic) is not finite")
            if i == len(weights) - 1 and (arr < 0).any():
                raise ValueError(f"{name}.set_weights: moving_variance has a negative entry")
            out.append((slot, arr))
        return out

    def get_config(self):
        return _keras_config(self, momentum=self.momentum)

    def extra_repr(self):
        return _keras_repr(self, f"axis={self.axis}, momentum={self.momentum}")


def _copy_state(dest, source):
    """The weight, bias and running statistics of one batch-norm layer into another's arrays."""
    for name in ("weight", "bias"):
        if getattr(source, name) is not None:
            np.copyto(getattr(dest, name).data, getattr(source, name).data)
    np.copyto(dest.running_mean, source.running_mean)
    np.copyto(dest.running_var, source.running_var)


# ------------------------------------------------------------------------------------------------
# Layer normalization


class _LayerNorm(Module):
    """What the two layer-norm layers share: normalisation over the trailing `self._dims` of the
    input (a Keras layer over other axes moves them to the end and back)."""

    def _setup(self, eps, scale, center, dtype):
        self._eps = check_number(eps, f"{type(self).__name__}: eps")
        if self._eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {self._eps}")
        self._scale, self._center = scale, center
        self.dtype = float_dtype(dtype)
        self.weight = self.bias = None
        self._dims = None
        self._saved = Saved()

    def _create(self, dims):
        self._dims = tuple(dims)
        self.weight = Parameter(np.ones(self._dims, self.dtype)) if self._scale else None
        self.bias = Parameter(np.zeros(self._dims, self.dtype)) if self._center else None

    @property
    def built(self):
        return self._dims is not None

    def _to_keras(self, arr):
        return arr  # gamma and beta have the normalised axes' shape in both dialects

    _from_keras = _to_keras

    def _to_rows(self, x):
        return x  # the normalised axes are already the trailing ones

    def _from_rows(self, y):
        return y

    def forward(self, x):
        x = as_input(x, self.dtype, self, min_ndim=1, what=self._what)
        if not self.built:
            self.build(x.shape)
        xr = self._to_rows(x)
        if xr.shape[xr.ndim - len(self._dims):] != self._dims:
            raise ValueError(f"{self!r}: expected input with shape [*, {', '.join(map(str, self._dims))}], "
                             f"got shape {x.shape}")
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        y, mean, invstd = layer_norm(xr, self._dims, w, b, eps=self._eps)
        s = self._saved
        s.x, s.y, s.extra = xr, y, (mean, invstd, x.shape)
        return self._from_rows(y)

    def backward(self, dy):
        s = self._saved
        if s.x is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        mean, invstd, shape = s.extra
        dy = self._to_rows(as_grad(dy, self.dtype, self, shape))
        w = None if self.weight is None else self.weight.data
        dx, dw, db = layer_norm_backward(dy, s.x, mean, invstd, self._dims, w)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return self._from_rows(dx)

    def plan_step(self, input_shape=None):
        """This layer as a native "layer_norm" step over its trailing dims (see _plan.py)."""
        if not self.built or input_shape is None:
            return None
        return {"kind": "layer_norm", "params": {"weight": self.weight, "bias": self.bias},
                "attrs": {"eps": self._eps, "normalized_dims": len(self._dims)}}


class LayerNorm(_LayerNorm):
    r"""Layer normalization over the trailing dims `normalized_shape`, PyTorch's `nn.LayerNorm`:

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta

    with the mean and biased variance of each sample's last ``len(normalized_shape)`` dims, the
    same in training and eval mode.

    Args:
        normalized_shape (int or tuple): the trailing dims normalised together.
        eps (float): added to the variance. Default: 1e-5.
        elementwise_affine (bool): learn weight (ones) of normalized_shape. Default: True.
        bias (bool): with elementwise_affine, learn bias (zeros) too. Default: True.
        dtype: float32 (default) or float64.

    Example:
        >>> LayerNorm(4)(np.array([[1.0, 2.0, 3.0, 4.0]])).round(3).tolist()
        [[-1.342, -0.447, 0.447, 1.342]]
    """

    _what = "(*, normalized_shape)"
    _CONFIG_KEYS = ("normalized_shape", "eps", "elementwise_affine", "bias", "dtype")

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if device not in (None, "cpu"):
            raise ValueError(f"{layer}: device={device!r}: lamina runs on the CPU")
        dims = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not dims:
            raise ValueError(f"{layer}: normalized_shape must name at least one dim")
        self.normalized_shape = tuple(check_int(d, f"{layer}: normalized_shape", 1, error=ValueError) for d in dims)
        self.elementwise_affine = check_flag(elementwise_affine, "elementwise_affine")
        self.use_bias = check_flag(bias, "bias")
        self._setup(eps, self.elementwise_affine, self.elementwise_affine and self.use_bias, dtype)
        self.eps = self._eps
        self._create(self.normalized_shape)

    def get_config(self):
        return self._with_name({"class": "LayerNorm", "normalized_shape": list(self.normalized_shape),
                                "eps": self.eps, "elementwise_affine": self.elementwise_affine,
                                "bias": self.use_bias, "dtype": self.dtype.name})

    @classmethod
    def config_parameters(cls, config, input_shape):
        dims = config.get("normalized_shape")
        dims = [dims] if isinstance(dims, int) else dims
        if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in dims):
            return 0, input_shape
        n = math.prod(dims)
        affine = config.get("elementwise_affine", True)
        return (n * (affine + (affine and config.get("bias", True)))), input_shape

    def extra_repr(self):
        s = f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        if self.elementwise_affine and not self.use_bias:
            s += ", bias=False"
        return s + _dtype_repr(self.dtype)


class LayerNormalization(_LayerNorm):
    r"""Keras's layer normalization over `axis` (an int or a list of axes) of each sample:
    :math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`, gamma and beta of the
    normalised axes' sizes; the same in training and inference.

    Args:
        axis (int or list of int): the normalised axes. Default: -1.
        epsilon (float): added to the variance. Default: 1e-3.
        center (bool): learn beta (zeros). scale (bool): learn gamma (ones). Default: True.
        dtype: float32 (default) or float64.

    Example:
        >>> LayerNormalization()(np.array([[1.0, 3.0]])).round(3).tolist()
        [[-0.999, 0.999]]
    """

    _what = "(batch, ...)"
    _CONFIG_KEYS = ("axis", "epsilon", "center", "scale", "input_shape", "dtype")

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, input_shape=None, dtype=np.float32, name=None):
        super().__init__(name)
        layer = type(self).__name__
        if (beta_initializer, gamma_initializer) != ("zeros", "ones"):
            raise ValueError(f"{layer}: only the default initializers are supported; set other values with "
                             f"set_weights")
        if any(v is not None for v in (beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint)):
            raise ValueError(f"{layer}: regularizers and constraints are not supported")
        if check_flag(rms_scaling, "rms_scaling"):
            raise ValueError(f"{layer}: rms_scaling=True is not supported")
        axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
        if not axes:
            raise ValueError(f"{layer}: axis must name at least one axis")
        self.axis = axes[0] if isinstance(axis, (int, np.integer)) else axes
        self._axes = tuple(check_int(a, f"{layer}: axis", minimum=-64, error=ValueError) for a in axes)
        self.epsilon = check_number(epsilon, f"{layer}: epsilon")
        self.center, self.scale = check_flag(center, "center"), check_flag(scale, "scale")
        self._setup(self.epsilon, self.scale, self.center, dtype)
        self._order = None  # the permutation that moves the normalised axes to the end, when they are not
        self.input_shape = None
        if input_shape is not None:
            self.input_shape = tuple(input_shape)
            self.build((None, *self.input_shape))

    gamma = property(lambda self: self.weight)
    beta = property(lambda self: self.bias)

    def _positive_axes(self, ndim):
        axes = sorted({a % ndim if -ndim <= a < ndim else -1 for a in self._axes})
        if -1 in axes or 0 in axes or len(axes) != len(self._axes):
            raise ValueError(f"{self!r}: axis {self.axis} does not name distinct non-batch axes of a "
                             f"{ndim}-D input")
        return axes

    def build(self, input_shape):
        shape = tuple(input_shape)
        axes = self._positive_axes(len(shape))
        dims = tuple(shape[a] for a in axes)
        if any(d is None for d in dims):
            raise ValueError(f"{self!r}: the normalised axes of input shape {shape} must be known to build")
        if axes != list(range(len(shape) - len(axes), len(shape))):
            rest = [a for a in range(len(shape)) if a not in axes]
            self._order = (*rest, *axes)
        if not self.built:
            self._create(dims)

    def _to_rows(self, x):
        if self._order is None:
            return x
        if len(self._order) != x.ndim:
            self._positive_axes(x.ndim)
            raise ValueError(f"{self!r}: built for {len(self._order)}-D inputs, got shape {x.shape}")
        return np.ascontiguousarray(x.transpose(self._order))

    def _from_rows(self, y):
        return y if self._order is None else np.ascontiguousarray(y.transpose(np.argsort(self._order)))

    def plan_step(self, input_shape=None):
        return None if self._order is not None else super().plan_step(input_shape)

    def get_config(self):
        return _keras_config(self)

    def extra_repr(self):
        return _keras_repr(self, f"axis={self.axis}")


def _keras_config(layer, **more):
    """A Keras-dialect normalization layer's config: its own arguments and the shared ones."""
    return layer._with_name({"class": type(layer).__name__, "axis": layer.axis, **more, "epsilon": layer.epsilon,
                             "center": layer.center, "scale": layer.scale,
                             "input_shape": None if layer.input_shape is None else list(layer.input_shape),
                             "dtype": layer.dtype.name})


def _keras_repr(layer, head):
    s = f"{head}, epsilon={layer.epsilon}"
    if not layer.center:
        s += ", center=False"
    if not layer.scale:
        s += ", scale=False"
    return s + _dtype_repr(layer.dtype)


def _dtype_repr(dtype):
    return "" if dtype == np.float32 else f", dtype={dtype.name}"


_registry.register(BatchNorm1d, BatchNorm2d, BatchNormalization, LayerNorm, LayerNormalization)
