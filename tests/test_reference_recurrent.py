"""lamina.reference recurrent layers and embedding against central finite differences (float64) and
against torch.nn.RNN/LSTM/GRU/Embedding with the same weights, forward and backward, initial-state
gradients included (float64; skipped when torch is missing)."""
import numpy as np
import pytest

from lamina import reference as ref

from conftest import RECURRENT_TORCH_TOL

CELLS = {  # name: (gates, forward, backward, keyword arguments)
    "rnn_tanh": (1, dict(nonlinearity="tanh")),
    "rnn_relu": (1, dict(nonlinearity="relu")),
    "lstm": (4, {}),
    "gru": (3, dict(reset_after=True)),
    "gru_reset_before": (3, dict(reset_after=False)),
}


def op_of(cell):
    return cell.split("_")[0]


def make(cell, T, N, I, H, seed=0):
    G, kw = CELLS[cell]
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    p = dict(x=rng.standard_normal((T, N, I)), h0=rng.standard_normal((N, H)),
             weight_ih=rng.standard_normal((G * H, I)) * s, weight_hh=rng.standard_normal((G * H, H)) * s,
             bias_ih=rng.standard_normal(G * H) * s, bias_hh=rng.standard_normal(G * H) * s)
    if op_of(cell) == "lstm":
        p["c0"] = rng.standard_normal((N, H))
    up = dict(dy=rng.standard_normal((T, N, H)), dh_n=rng.standard_normal((N, H)))
    if op_of(cell) == "lstm":
        up["dc_n"] = rng.standard_normal((N, H))
    return p, up, kw


def run(cell, p, kw):
    """Forward; returns the outputs tuple."""
    op = op_of(cell)
    if op == "lstm":
        return ref.lstm(p["x"], p["h0"], p["c0"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    return getattr(ref, op)(p["x"], p["h0"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], **kw)


def loss(cell, p, up, kw):
    """sum(dy * y) + sum(dh_n * h_n) (+ sum(dc_n * c_n)): its gradient is what backward returns."""
    out = run(cell, p, kw)
    total = np.sum(up["dy"] * out[0]) + np.sum(up["dh_n"] * out[1])
    if op_of(cell) == "lstm":
        total += np.sum(up["dc_n"] * out[2])
    return total


def gradients(cell, p, up, kw):
    """{name: gradient} from the reference's backward."""
    op, out = op_of(cell), run(cell, p, kw)
    common = dict(x=p["x"], h0=p["h0"], weight_ih=p["weight_ih"], weight_hh=p["weight_hh"], y=out[0])
    if op == "lstm":
        g = ref.lstm_backward(up["dy"], up["dh_n"], up["dc_n"], c0=p["c0"], workspace=out[3], **common)
        names = ("x", "h0", "c0")
    elif op == "gru":
        g = ref.gru_backward(up["dy"], up["dh_n"], workspace=out[2], **common, **kw)
        names = ("x", "h0")
    else:
        g = ref.rnn_backward(up["dy"], up["dh_n"], **common, **kw)
        names = ("x", "h0")
    return dict(zip(names + ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), g))


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("T", [1, 2, 5])
def test_backward_matches_central_differences(cell, T, ref_tol):
    p, up, kw = make(cell, T, 3, 4, 5)
    grads = gradients(cell, p, up, kw)
    h, rng = ref_tol.fd_h, np.random.default_rng(5)
    for name, grad in grads.items():
        arr = p[name]
        for flat in rng.choice(arr.size, size=min(arr.size, 10), replace=False):
            i = np.unravel_index(flat, arr.shape)
            old = arr[i]
            arr[i] = old + h
            f_up = loss(cell, p, up, kw)
            arr[i] = old - h
            f_down = loss(cell, p, up, kw)
            arr[i] = old
            numeric = (f_up - f_down) / (2 * h)
            assert np.isclose(grad[i], numeric, rtol=ref_tol.fd_rtol, atol=ref_tol.fd_atol), \
                f"{cell} T={T} d{name}{i}: backward {grad[i]!r}, central difference {numeric!r}"


def test_embedding_backward_matches_central_differences(ref_tol):
    rng = np.random.default_rng(0)
    W, idx = rng.standard_normal((6, 3)), rng.integers(0, 6, (4, 5))
    dy = rng.standard_normal((4, 5, 3))
    grad = ref.embedding_backward(dy, idx, 6)
    h = ref_tol.fd_h
    for i in np.ndindex(W.shape):
        old = W[i]
        W[i] = old + h
        f_up = np.sum(dy * ref.embedding(idx, W))
        W[i] = old - h
        f_down = np.sum(dy * ref.embedding(idx, W))
        W[i] = old
        assert np.isclose(grad[i], (f_up - f_down) / (2 * h), rtol=ref_tol.fd_rtol, atol=ref_tol.fd_atol), i


# ---- torch ---------------------------------------------------------------------------------------

TORCH_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]  # torch has no reset-before GRU


@pytest.mark.parametrize("cell", TORCH_CELLS)
@pytest.mark.parametrize("T, N, I, H", [(1, 1, 1, 1), (2, 3, 4, 7), (17, 2, 5, 64)])
def test_matches_torch_forward_and_backward(cell, T, N, I, H):
    torch = pytest.importorskip("torch")
    p, up, kw = make(cell, T, N, I, H)
    op = op_of(cell)
    if op == "rnn":
        module = torch.nn.RNN(I, H, nonlinearity=kw["nonlinearity"], dtype=torch.float64)
    else:
        module = getattr(torch.nn, op.upper())(I, H, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, f"{name}_l0").copy_(torch.from_numpy(p[name]))
    x = torch.from_numpy(p["x"]).requires_grad_()
    h0 = torch.from_numpy(p["h0"][None]).requires_grad_()
    if op == "lstm":
        c0 = torch.from_numpy(p["c0"][None]).requires_grad_()
        y, (h_n, c_n) = module(x, (h0, c0))
        finals = [h_n[0], c_n[0]]
        total = (y * torch.from_numpy(up["dy"])).sum() + (h_n[0] * torch.from_numpy(up["dh_n"])).sum() \
            + (c_n[0] * torch.from_numpy(up["dc_n"])).sum()
    else:
        y, h_n = module(x, h0)
        finals = [h_n[0]]
        total = (y * torch.from_numpy(up["dy"])).sum() + (h_n[0] * torch.from_numpy(up["dh_n"])).sum()
    total.backward()
    out = run(cell, p, kw)
    np.testing.assert_allclose(out[0], y.detach().numpy(), **RECURRENT_TORCH_TOL, err_msg=f"{cell} y")
    for k, final in enumerate(finals):
        np.testing.assert_allclose(out[1 + k], final.detach().numpy(), **RECURRENT_TORCH_TOL, err_msg=f"{cell} state {k}")
    grads = gradients(cell, p, up, kw)
    want = {"x": x.grad, "h0": h0.grad[0]}
    if op == "lstm":
        want["c0"] = c0.grad[0]
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        want[name] = getattr(module, f"{name}_l0").grad
    for name, w in want.items():
        np.testing.assert_allclose(grads[name], w.numpy(), **RECURRENT_TORCH_TOL, err_msg=f"{cell} d{name}")


def test_gru_reset_before_is_keras_formula():
    """Keras's GRU with reset_after=False: hh = tanh(x W_h + b_h + (r * h) U_h), one bias; here that
    bias is split between bias_ih and bias_hh's n rows, which only their sum matters for."""
    p, up, kw = make("gru_reset_before", 3, 2, 4, 5)
    H = 5
    x, h, Wi, Wh, bi, bh = p["x"], p["h0"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for t in range(3):
        xz = x[t] @ Wi.T + bi
        hz = h @ Wh[:2 * H].T + bh[:2 * H]
        r, z = sig(xz[:, :H] + hz[:, :H]), sig(xz[:, H:2 * H] + hz[:, H:])
        hh = np.tanh(xz[:, 2 * H:] + bh[2 * H:] + (r * h) @ Wh[2 * H:].T)
        h = z * h + (1 - z) * hh
    np.testing.assert_allclose(run("gru_reset_before", p, kw)[1], h, rtol=1e-13, atol=1e-14)


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    W, idx, dy = rng.standard_normal((9, 4)), rng.integers(0, 9, (3, 7)), rng.standard_normal((3, 7, 4))
    for padding_idx in (None, 2):
        emb = torch.nn.Embedding(9, 4, padding_idx=padding_idx, dtype=torch.float64)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(W))
        y = emb(torch.from_numpy(idx))
        (y * torch.from_numpy(dy)).sum().backward()
        np.testing.assert_array_equal(ref.embedding(idx, W), y.detach().numpy())
        np.testing.assert_allclose(ref.embedding_backward(dy, idx, 9, padding_idx=padding_idx), emb.weight.grad.numpy(),
                                   rtol=1e-14, atol=1e-14)
