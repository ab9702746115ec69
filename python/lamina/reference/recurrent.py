"""Recurrent layers (Elman RNN, LSTM, GRU) and embedding in float64 NumPy: the specification of
lamina.ops.recurrent. One layer, one direction, the whole sequence per call, time-major.

Layout: x (T, N, I), y (T, N, H) with y[t] = h_t; h0, c0, h_n, c_n (N, H). Weights in PyTorch's
form: weight_ih (G*H, I), weight_hh (G*H, H) and two biases bias_ih, bias_hh (G*H,), each None for
none, with the G gate blocks of H rows in PyTorch's order (LSTM i, f, g, o; GRU r, z, n). Every
cell adds its input projection a_x = x_t W_ih^T + b_ih to its recurrent one a_h = h_{t-1} W_hh^T +
b_hh (GRU's n gate keeps them apart). Forward returns, beside the outputs, the workspace backward
reads; backward returns every gradient, accumulating parameter gradients into arrays it is given
(None: fresh arrays; db_ih / db_hh False: skipped, for a layer without biases).
"""
import numpy as np

from .._checks import (check_flag, check_indices, check_int, check_nonlinearity, check_output, check_padding_idx,
                       check_recurrent_vector, check_state, recurrent_geometry)
from ._core import as_f64, sigmoid_formula

__all__ = ["rnn", "rnn_backward", "lstm", "lstm_backward", "gru", "gru_backward", "embedding",
           "embedding_backward"]


def _layer(op, cell, x, weight_ih, weight_hh, bias_ih, bias_hh):
    """The layer's arrays as float64 and its sizes (T, N, I, H), checked."""
    x, w_ih, w_hh = as_f64(op, "x", x), as_f64(op, "weight_ih", weight_ih), as_f64(op, "weight_hh", weight_hh)
    T, N, I, H = recurrent_geometry(op, cell, x.shape, w_ih.shape, w_hh.shape)
    biases = []
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        b = None if b is None else as_f64(op, name, b)
        check_recurrent_vector(op, name, b, w_hh.shape[0])
        biases.append(np.zeros(w_hh.shape[0]) if b is None else b)
    return x, w_ih, w_hh, biases[0], biases[1], (T, N, I, H)


def _state(op, name, a, N, H):
    """An initial state or a gradient of a final one: None means zeros."""
    if a is None:
        return np.zeros((N, H))
    a = as_f64(op, name, a)
    check_state(op, name, a, N, H)
    return a


def _sequence_grad(op, dy, T, N, H):
    if dy is None:
        return np.zeros((T, N, H))
    dy = as_f64(op, "dy", dy)
    if dy.shape != (T, N, H):
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected (time, batch, hidden_size) = ({T}, {N}, {H})")
    return dy


def _check_saved(op, name, a, shape):
    a = as_f64(op, name, a)
    if a.shape != shape:
        raise ValueError(f"{op}: {name} has shape {a.shape}, expected {shape} (as forward returned it)")
    return a


def _weight_grads(op, dgates_ih, dgates_hh, x, h_prev, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh, need_dx,
                  recurrent_input=None):
    """dx = dA_x W_ih, dW_ih += dA_x^T x, dW_hh += dA_h^T h_prev, db_ih += sum dA_x, db_hh += sum dA_h over
    every step at once, dA_x and dA_h (T, N, G*H) the gradients of the input and recurrent projections.
    recurrent_input, when given, replaces h_prev as the right factor of dW_hh (GRU's reset-before n rows)."""
    T, N, I = x.shape
    G = w_ih.shape[0]
    da_x, da_h = dgates_ih.reshape(T * N, G), dgates_hh.reshape(T * N, G)
    hp = h_prev.reshape(T * N, -1)
    grad_w_hh = da_h.T @ hp
    if recurrent_input is not None:  # rows of W_hh multiplied by r * h instead of h
        rows, rh = recurrent_input
        grad_w_hh[rows] = da_h[:, rows].T @ rh.reshape(T * N, -1)
    out = [None if not need_dx else (da_x @ w_ih).reshape(T, N, I)]
    for name, given, grad in (("dW_ih", dW_ih, da_x.T @ x.reshape(T * N, I)), ("dW_hh", dW_hh, grad_w_hh),
                              ("db_ih", db_ih, da_x.sum(axis=0)), ("db_hh", db_hh, da_h.sum(axis=0))):
        if given is False:
            out.append(None)
        elif given is None:
            out.append(grad)
        else:
            check_output(op, name, given)
            if given.shape != grad.shape:
                raise ValueError(f"{op}: {name} has shape {given.shape}, expected {grad.shape}")
            given += grad
            out.append(given)
    return out


def _previous_states(h0, y):
    """h_{t-1} for every t: h0, y[0], ..., y[T-2]."""
    return np.concatenate([h0[None], y[:-1]], axis=0)


# ---- Elman RNN -----------------------------------------------------------------------------------

def rnn(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, nonlinearity="tanh"):
    r"""Elman RNN, PyTorch's nn.RNN (one layer, one direction), time-major:

    .. math::
        h_t = \mathrm{act}(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}), \quad \mathrm{act} = \tanh
        \text{ or relu}

    Args:
        x: (T, N, I). h0: (N, H) or None (zeros). weight_ih (H, I), weight_hh (H, H), biases (H,) or None.

    Returns (y, h_n): y (T, N, H) holds every h_t, h_n = y[T-1]. Backward needs only y.

    Example::

        >>> y, h = rnn(np.ones((2, 1, 1)), None, np.ones((1, 1)), np.ones((1, 1)), nonlinearity="relu")
        >>> y.ravel().tolist()
        [1.0, 2.0]
    """
    op = "rnn"
    check_nonlinearity(op, nonlinearity)
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "rnn", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h = _state(op, "h0", h0, N, H)
    a_x = x @ w_ih.T + b_ih
    y = np.empty((T, N, H))
    for t in range(T):
        a = a_x[t] + (h @ w_hh.T + b_hh)
        h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
        y[t] = h
    return y, y[-1].copy()


def rnn_backward(dy, dh_n, x, h0, weight_ih, weight_hh, y, *, nonlinearity="tanh", dW_ih=None, dW_hh=None,
                 db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`rnn` from dy (T, N, H) (the gradient of y; None: zeros) and dh_n (N, H) (of
    h_n, None: zeros), through time from the last step:

    .. math::
        dh = dy_t + dh_{next}, \quad da_t = dh \cdot \mathrm{act}'(h_t), \quad dh_{next} = da_t W_{hh}

    with act' = 1 - h^2 (tanh) or [h > 0] (relu); then dx = da W_ih, dW_ih += da^T x,
    dW_hh += da^T h_{prev}, db_ih = db_hh += sum da. Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh).
    """
    op = "rnn_backward"
    check_nonlinearity(op, nonlinearity)
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "rnn", x, weight_ih, weight_hh, None, None)
    h0 = _state(op, "h0", h0, N, H)
    y = _check_saved(op, "y", y, (T, N, H))
    dy = _sequence_grad(op, dy, T, N, H)
    dh_next = _state(op, "dh_n", dh_n, N, H)
    da = np.empty((T, N, H))
    for t in reversed(range(T)):
        dh = dy[t] + dh_next
        da[t] = dh * (1.0 - y[t] ** 2) if nonlinearity == "tanh" else np.where(y[t] > 0, dh, 0.0)
        dh_next = da[t] @ w_hh
    dx, *grads = _weight_grads(op, da, da, x, _previous_states(h0, y), w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh,
                               need_dx)
    return (dx, dh_next, *grads)


# ---- LSTM ----------------------------------------------------------------------------------------

def lstm(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    r"""LSTM, PyTorch's nn.LSTM (one layer, one direction), time-major; gates i, f, g, o:

    .. math::
        a = x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh} = [a_i, a_f, a_g, a_o], \quad
        i, f, o = \sigma(a_i), \sigma(a_f), \sigma(a_o), \quad g = \tanh(a_g)

        c_t = f c_{t-1} + i g, \quad h_t = o \tanh(c_t)

    Args:
        x: (T, N, I). h0, c0: (N, H) or None (zeros). weight_ih (4H, I), weight_hh (4H, H), biases (4H,) or None.

    Returns (y, h_n, c_n, workspace): y (T, N, H) holds every h_t; workspace (T, N, 5H) holds, per step
    and row, the activated gates i, f, g, o and the cell state c_t (what backward reads).
    """
    op = "lstm"
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "lstm", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h, c = _state(op, "h0", h0, N, H), _state(op, "c0", c0, N, H)
    a_x = x @ w_ih.T + b_ih
    y = np.empty((T, N, H))
    work = np.empty((T, N, 5 * H))
    for t in range(T):
        a = a_x[t] + (h @ w_hh.T + b_hh)
        i, f = sigmoid_formula(a[:, :H]), sigmoid_formula(a[:, H:2 * H])
        g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid_formula(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        y[t] = h
        work[t] = np.concatenate([i, f, g, o, c], axis=1)
    return y, h.copy(), c.copy(), work


def lstm_backward(dy, dh_n, dc_n, x, h0, c0, weight_ih, weight_hh, y, workspace, *, dW_ih=None, dW_hh=None,
                  db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`lstm` from dy (T, N, H), dh_n and dc_n (N, H) (each None: zeros), through
    time from the last step, with dc carried from step to step:

    .. math::
        dh = dy_t + dh_{next}, \quad dc = dc_{next} + dh\, o\, (1 - \tanh^2 c_t)

        da_i = dc\, g\, i (1 - i), \quad da_f = dc\, c_{t-1} f (1 - f), \quad da_g = dc\, i (1 - g^2), \quad
        da_o = dh \tanh(c_t)\, o (1 - o)

        dh_{next} = da W_{hh}, \quad dc_{next} = dc\, f

    then dx = da W_ih, dW_ih += da^T x, dW_hh += da^T h_{prev}, db_ih = db_hh += sum da over all steps.
    Returns (dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh).
    """
    op = "lstm_backward"
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "lstm", x, weight_ih, weight_hh, None, None)
    h0, c0 = _state(op, "h0", h0, N, H), _state(op, "c0", c0, N, H)
    y = _check_saved(op, "y", y, (T, N, H))
    work = _check_saved(op, "workspace", workspace, (T, N, 5 * H))
    dy = _sequence_grad(op, dy, T, N, H)
    dh_next, dc_next = _state(op, "dh_n", dh_n, N, H), _state(op, "dc_n", dc_n, N, H)
    da = np.empty((T, N, 4 * H))
    for t in reversed(range(T)):
        i, f, g, o, c = (work[t][:, k * H:(k + 1) * H] for k in range(5))
        c_prev = work[t - 1][:, 4 * H:] if t > 0 else c0
        tc = np.tanh(c)
        dh = dy[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tc ** 2)
        da[t] = np.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g ** 2),
                                dh * tc * o * (1.0 - o)], axis=1)
        dh_next = da[t] @ w_hh
        dc_next = dc * f
    dx, *grads = _weight_grads(op, da, da, x, _previous_states(h0, y), w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh,
                               need_dx)
    return (dx, dh_next, dc_next, *grads)


# ---- GRU -----------------------------------------------------------------------------------------

def gru(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, reset_after=True):
    r"""GRU, PyTorch's nn.GRU (one layer, one direction), time-major; gates r, z, n:

    .. math::
        r = \sigma(a^x_r + a^h_r), \quad z = \sigma(a^x_z + a^h_z), \quad n = \tanh(a^x_n + r\, a^h_n), \quad
        h_t = (1 - z)\, n + z\, h_{t-1}

    with :math:`a^x = x_t W_{ih}^T + b_{ih}` and :math:`a^h = h_{t-1} W_{hh}^T + b_{hh}` (reset_after=True,
    PyTorch's formula and Keras's default). With reset_after=False (Keras's other variant) the reset
    gate scales the state before its product: :math:`n = \tanh(a^x_n + (r\, h_{t-1}) W_{hn}^T + b_{hn})`.

    Args:
        x: (T, N, I). h0: (N, H) or None (zeros). weight_ih (3H, I), weight_hh (3H, H), biases (3H,) or None.

    Returns (y, h_n, workspace): workspace (T, N, 4H) holds per step and row r, z, n and the n gate's
    recurrent term: :math:`a^h_n` (reset_after) or :math:`r\, h_{t-1}` (not).
    """
    op = "gru"
    check_flag(reset_after, f"{op}: reset_after")
    x, w_ih, w_hh, b_ih, b_hh, (T, N, I, H) = _layer(op, "gru", x, weight_ih, weight_hh, bias_ih, bias_hh)
    h = _state(op, "h0", h0, N, H)
    a_x = x @ w_ih.T + b_ih
    y = np.empty((T, N, H))
    work = np.empty((T, N, 4 * H))
    for t in range(T):
        a_h = h @ w_hh[:2 * H].T + b_hh[:2 * H]
        r = sigmoid_formula(a_x[t][:, :H] + a_h[:, :H])
        z = sigmoid_formula(a_x[t][:, H:2 * H] + a_h[:, H:])
        if reset_after:
            kept = h @ w_hh[2 * H:].T + b_hh[2 * H:]
            n = np.tanh(a_x[t][:, 2 * H:] + r * kept)
        else:
            kept = r * h
            n = np.tanh(a_x[t][:, 2 * H:] + (kept @ w_hh[2 * H:].T + b_hh[2 * H:]))
        h = (1.0 - z) * n + z * h
        y[t] = h
        work[t] = np.concatenate([r, z, n, kept], axis=1)
    return y, h.copy(), work


def gru_backward(dy, dh_n, x, h0, weight_ih, weight_hh, y, workspace, *, reset_after=True, dW_ih=None,
                 dW_hh=None, db_ih=None, db_hh=None, need_dx=True):
    r"""Gradients of :func:`gru` from dy (T, N, H) and dh_n (N, H) (each None: zeros), through time:

    .. math::
        dh = dy_t + dh_{next}, \quad da_n = dh (1 - z)(1 - n^2), \quad da_z = dh (h_{t-1} - n)\, z (1 - z)

    reset_after: :math:`da_r = da_n\, a^h_n\, r (1 - r)`, the recurrent n rows take :math:`da_n\, r`;
    otherwise, with :math:`d(rh) = da_n W_{hn}`: :math:`da_r = d(rh)\, h_{t-1}\, r (1 - r)`, the
    recurrent n rows take :math:`da_n` against r h. Then
    :math:`dh_{next} = dh\, z + [da_r, da_z, \cdot] W_{hh}` (+ :math:`d(rh)\, r` without reset_after),
    and the weight gradients over all steps at once. Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh).
    """
    op = "gru_backward"
    check_flag(reset_after, f"{op}: reset_after")
    check_flag(need_dx, f"{op}: need_dx")
    x, w_ih, w_hh, _, _, (T, N, I, H) = _layer(op, "gru", x, weight_ih, weight_hh, None, None)
    h0 = _state(op, "h0", h0, N, H)
    y = _check_saved(op, "y", y, (T, N, H))
    work = _check_saved(op, "workspace", workspace, (T, N, 4 * H))
    dy = _sequence_grad(op, dy, T, N, H)
    dh_next = _state(op, "dh_n", dh_n, N, H)
    h_prev = _previous_states(h0, y)
    da_x, da_h = np.empty((T, N, 3 * H)), np.empty((T, N, 3 * H))
    for t in reversed(range(T)):
        r, z, n, kept = (work[t][:, k * H:(k + 1) * H] for k in range(4))
        dh = dy[t] + dh_next
        dan = dh * (1.0 - z) * (1.0 - n ** 2)
        daz = dh * (h_prev[t] - n) * z * (1.0 - z)
        if reset_after:
            dar = dan * kept * r * (1.0 - r)
            da_h[t] = np.concatenate([dar, daz, dan * r], axis=1)
            dh_next = dh * z + da_h[t] @ w_hh
        else:
            drh = dan @ w_hh[2 * H:]
            dar = drh * h_prev[t] * r * (1.0 - r)
            da_h[t] = np.concatenate([dar, daz, dan], axis=1)
            dh_next = dh * z + drh * r + da_h[t][:, :2 * H] @ w_hh[:2 * H]
        da_x[t] = np.concatenate([dar, daz, dan], axis=1)
    rows = None if reset_after else (slice(2 * H, 3 * H), work[:, :, 3 * H:])
    dx, *grads = _weight_grads(op, da_x, da_h, x, h_prev, w_ih, w_hh, dW_ih, dW_hh, db_ih, db_hh, need_dx,
                               recurrent_input=rows)
    return (dx, dh_next, *grads)


# ---- embedding -----------------------------------------------------------------------------------

def embedding(indices, weight):
    r"""A lookup: :math:`y[\ldots] = W[\mathrm{indices}[\ldots]]`.

    Args:
        indices: integers of any shape, each in [0, num_embeddings).
        weight: (num_embeddings, D).

    Returns y of shape indices.shape + (D,).
    """
    op = "embedding"
    weight = as_f64(op, "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    idx = check_indices(op, np.asarray(indices), weight.shape[0])
    return weight[idx]


def embedding_backward(dy, indices, num_embeddings, *, padding_idx=None, dW=None):
    r"""Gradient of :func:`embedding`: :math:`dW[k] \mathrel{+}= \sum_{\mathrm{indices}[j] = k} dy[j]`, the
    rows added in index order, none into row padding_idx. dW (num_embeddings, D): None for a fresh
    array, or accumulated into in place. Returns dW.
    """
    op = "embedding_backward"
    num_embeddings = check_int(num_embeddings, f"{op}: num_embeddings")
    idx = check_indices(op, np.asarray(indices), num_embeddings)
    padding_idx = check_padding_idx(op, padding_idx, num_embeddings)
    dy = as_f64(op, "dy", dy)
    if dy.ndim != idx.ndim + 1 or dy.shape[:-1] != idx.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected indices.shape + (embedding_dim,) = "
                         f"{idx.shape + ('D',)}")
    D = dy.shape[-1]
    grad = np.zeros((num_embeddings, D))
    rows, flat = dy.reshape(-1, D), idx.reshape(-1)
    for j in range(flat.size):
        if flat[j] != padding_idx:
            grad[flat[j]] += rows[j]
    if dW is None:
        return grad
    check_output(op, "dW", dW)
    if dW.shape != (num_embeddings, D):
        raise ValueError(f"{op}: dW has shape {dW.shape}, expected ({num_embeddings}, {D})")
    dW += grad
    return dW
