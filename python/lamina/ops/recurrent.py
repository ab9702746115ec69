"""Recurrent layers (Elman RNN, LSTM, GRU) and embedding, native: one layer, one direction, the whole
sequence per call, time-major (x (T, N, I), y (T, N, H)), PyTorch's weights, gate order (LSTM i, f,
g, o; GRU r, z, n) and two biases. Same signatures, checks and results as lamina.reference.recurrent;
every array of a call takes weight_hh's dtype (integer inputs are cast to it)."""
import numpy as np

from .. import _native
from .._checks import (check_flag, check_indices, check_int, check_nonlinearity, check_padding_idx,
                       check_recurrent_vector, check_state, recurrent_geometry)
from ._core import as_float, inplace

__all__ = ["rnn", "rnn_backward", "lstm", "lstm_backward", "gru", "gru_backward", "embedding",
           "embedding_backward"]


def _like(op, name, a, dtype):
    """An input of the layer's dtype (integers cast to it), C-contiguous; None stays None."""
    if a is None:
        return None
    a = as_float(op, name, a, dtype)
    if a.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {a.dtype} but weight_hh has dtype {dtype}")
    return a


def _layer(op, cell, x, weight_ih, weight_hh, bias_ih, bias_hh):
    w_hh = as_float(op, "weight_hh", weight_hh)
    dt = w_hh.dtype
    x, w_ih = _like(op, "x", x, dt), _like(op, "weight_ih", weight_ih, dt)
    size = recurrent_geometry(op, cell, x.shape, w_ih.shape, w_hh.shape)
    biases = []
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        b = _like(op, name, b, dt)
        check_recurrent_vector(op, name, b, w_hh.shape[0])
        biases.append(b)
    return x, w_ih, w_hh, biases[0], biases[1], size


def _state(op, name, a, dt, N, H):
    a = _like(op, name, a, dt)
    check_state(op, name, a, N, H)
    return a


def _saved(op, name, a, dt, shape):
    a = _like(op, name, a, dt)
    if a.shape != shape:
        raise ValueError(f"{op}: {name} has shape {a.shape}, expected {shape} (as forward returned it)")
    return a


def _sequence_grad(op, dy, dt, T, N, H):
    dy = _like(op, "dy", dy, dt)
    if dy is not None and dy.shape != (T, N, H):
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected (time, batch, hidden_size) = ({T}, {N}, {H})")
    return dy


def _grads(op, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh):
    """The parameter gradients to accumulate into: None -> fresh zeros, an array -> itself (checked),
    False -> skipped (a layer without biases passes db_ih=False, db_hh=False)."""
    out = []
    for name, given, shape in (("dW_ih", dW_ih, w_ih.shape), ("dW_hh", dW_hh, w_hh.shape),
                               ("db_ih", db_ih, (w_hh.shape[0],)), ("db_hh", db_hh, (w_hh.shape[0],))):
        if given is False:
            out.append(None)
        elif given is None:
            out.append(np.zeros(shape, dtype=w_hh.dtype))
        else:
            out.append(inplace(op, name, given, shape, w_hh.dtype))
    return out


def rnn(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh"):
    r"""Elman RNN, :math:`h_t = \mathrm{act}(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})`, the
    recurrent product and the activation fused in one GEMM per step.

    Shape: x (T, N, I), h0 (N, H) or None, weight_ih (H, I), weight_hh (H, H) -> y (T, N, H), h_n (N, H).
    """
    op = "rnn"
    check_nonlinearity(op, nonlinearity)
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "rnn", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h0 = _state(op, "h0", h0, w_hh.dtype, N, H)
    return _native.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)


def rnn_backward(dy, dh_n, x, h0, weight_ih, weight_hh, y, *, nonlinearity="tanh", dW_ih=None, dW_hh=None,
                 db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`rnn` through time (see lamina.reference.rnn_backward). Parameter gradients
    accumulate into dW_ih, dW_hh, db_ih, db_hh (None: fresh; db False: skipped).

    Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh); dx is None when need_dx is False.
    """
    op = "rnn_backward"
    check_nonlinearity(op, nonlinearity)
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "rnn", x, weight_ih, weight_hh, None, None)
    dt = w_hh.dtype
    h0, dh_n = _state(op, "h0", h0, dt, N, H), _state(op, "dh_n", dh_n, dt, N, H)
    y = _saved(op, "y", y, dt, (T, N, H))
    dy = _sequence_grad(op, dy, dt, T, N, H)
    grads = _grads(op, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh)
    dx, dh0 = _native.rnn_backward(dy, dh_n, x, h0, w_ih, w_hh, y, *grads, bool(need_dx), nonlinearity)
    return (dx, dh0, *grads)


def lstm(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    r"""LSTM (gates i, f, g, o): :math:`c_t = f c_{t-1} + i g`, :math:`h_t = o \tanh(c_t)`, the input
    projection of every step in one GEMM, then one recurrent GEMM per step followed by the gate
    arithmetic on its rows.

    Shape: x (T, N, I), h0 and c0 (N, H) or None, weight_ih (4H, I), weight_hh (4H, H) -> y (T, N, H),
    h_n, c_n (N, H) and the workspace (T, N, 5H) (gates i, f, g, o and c_t) that backward reads.
    """
    op = "lstm"
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "lstm", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h0, c0 = _state(op, "h0", h0, w_hh.dtype, N, H), _state(op, "c0", c0, w_hh.dtype, N, H)
    return _native.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)


def lstm_backward(dy, dh_n, dc_n, x, h0, c0, weight_ih, weight_hh, y, workspace, *, dW_ih=None, dW_hh=None,
                  db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`lstm` through time: per step the gate gradients and dh by one GEMM on W_hh;
    dx, dW_ih, dW_hh as single GEMMs over all steps. Returns (dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh).
    """
    op = "lstm_backward"
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "lstm", x, weight_ih, weight_hh, None, None)
    dt = w_hh.dtype
    h0, c0 = _state(op, "h0", h0, dt, N, H), _state(op, "c0", c0, dt, N, H)
    dh_n, dc_n = _state(op, "dh_n", dh_n, dt, N, H), _state(op, "dc_n", dc_n, dt, N, H)
    y = _saved(op, "y", y, dt, (T, N, H))
    workspace = _saved(op, "workspace", workspace, dt, (T, N, 5 * H))
    dy = _sequence_grad(op, dy, dt, T, N, H)
    grads = _grads(op, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh)
    dx, dh0, dc0 = _native.lstm_backward(dy, dh_n, dc_n, x, h0, c0, w_ih, w_hh, y, workspace, *grads,
                                         bool(need_dx))
    return (dx, dh0, dc0, *grads)


def gru(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True):
    r"""GRU (gates r, z, n): :math:`h_t = (1 - z) n + z h_{t-1}` with
    :math:`n = \tanh(a^x_n + r a^h_n)` (reset_after, PyTorch's) or
    :math:`\tanh(a^x_n + (r h_{t-1}) W_{hn}^T + b_{hn})` (Keras's reset_after=False).

    Shape: x (T, N, I), h0 (N, H) or None, weight_ih (3H, I), weight_hh (3H, H) -> y (T, N, H), h_n (N, H)
    and the workspace (T, N, 4H) (r, z, n and the n gate's recurrent term) that backward reads.
    """
    op = "gru"
    check_flag(reset_after, f"{op}: reset_after")
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "gru", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h0 = _state(op, "h0", h0, w_hh.dtype, N, H)
    return _native.gru(x, h0, w_ih, w_hh, b_ih, b_hh, bool(reset_after))


def gru_backward(dy, dh_n, x, h0, weight_ih, weight_hh, y, workspace, *, reset_after=True, dW_ih=None,
                 dW_hh=None, db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`gru` through time. Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh)."""
    op = "gru_backward"
    check_flag(reset_after, f"{op}: reset_after")
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "gru", x, weight_ih, weight_hh, None, None)
    dt = w_hh.dtype
    h0, dh_n = _state(op, "h0", h0, dt, N, H), _state(op, "dh_n", dh_n, dt, N, H)
    y = _saved(op, "y", y, dt, (T, N, H))
    workspace = _saved(op, "workspace", workspace, dt, (T, N, 4 * H))
    dy = _sequence_grad(op, dy, dt, T, N, H)
    grads = _grads(op, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh)
    dx, dh0 = _native.gru_backward(dy, dh_n, x, h0, w_ih, w_hh, y, workspace, *grads, bool(need_dx),
                                   bool(reset_after))
    return (dx, dh0, *grads)


def embedding(indices, weight):
    r"""A lookup, :math:`y[\ldots] = W[\mathrm{indices}[\ldots]]`: indices (any shape, integers in
    [0, num_embeddings)), weight (num_embeddings, D) -> y of shape indices.shape + (D,)."""
    op = "embedding"
    weight = as_float(op, "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    idx = check_indices(op, np.asarray(indices), weight.shape[0])
    return _native.embedding(idx, weight)


def embedding_backward(dy, indices, num_embeddings, *, padding_idx=None, dW=None):
    r"""Gradient of :func:`embedding`: dW[k] += the rows of dy whose index is k, added in index order
    (the same bits for any thread count), none into row padding_idx. dW: None for a fresh
    (num_embeddings, D) array of dy's dtype, or accumulated into in place. Returns dW."""
    op = "embedding_backward"
    num_embeddings = check_int(num_embeddings, f"{op}: num_embeddings")
    idx = check_indices(op, np.asarray(indices), num_embeddings)
    padding_idx = check_padding_idx(op, padding_idx, num_embeddings)
    dtype = dW.dtype if isinstance(dW, np.ndarray) and dW.dtype.kind == "f" else None
    dy = as_float(op, "dy", dy, dtype)
    if dy.ndim != idx.ndim + 1 or dy.shape[:-1] != idx.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected indices.shape + (embedding_dim,) = "
                         f"{idx.shape + ('D',)}")
    shape = (num_embeddings, dy.shape[-1])
    dW = np.zeros(shape, dtype=dy.dtype) if dW is None else inplace(op, "dW", dW, shape, dy.dtype)
    _native.embedding_backward(dy, idx, dW, -1 if padding_idx is None else padding_idx)
    return dW
