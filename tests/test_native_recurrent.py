"""lamina.ops recurrent layers (RNN tanh/relu, LSTM, GRU with and without reset_after) and embedding
against lamina.reference: sequence lengths 1, 2, 17, hidden sizes 1, 7, 64, batch 1 and 5, with and
without initial states and biases, float32 and float64; every ISA; 1 and 2 threads bitwise; the
gradient conventions (accumulate, skip, need_dx); bad input, through the ops and the raw bindings."""
import numpy as np
import pytest

import lamina
from lamina import _native, ops
from lamina import reference as ref

from conftest import layer_tol, recurrent_depth

DTYPES = [np.float32, np.float64]
# name: (op name, gates, keyword arguments)
CELLS = {
    "rnn_tanh": ("rnn", 1, dict(nonlinearity="tanh")),
    "rnn_relu": ("rnn", 1, dict(nonlinearity="relu")),
    "lstm": ("lstm", 4, {}),
    "gru": ("gru", 3, dict(reset_after=True)),
    "gru_reset_before": ("gru", 3, dict(reset_after=False)),
}


def make(cell, T, N, I, H, dtype, seed=0, states=True, biases=True):
    """Inputs of one layer: O(1) x and states, weights scaled by 1/sqrt(H) (as PyTorch initialises)."""
    op, G, kw = CELLS[cell]
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(H)

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    a = dict(x=r(T, N, I), h0=r(N, H) if states else None, weight_ih=r(G * H, I, s=scale),
             weight_hh=r(G * H, H, s=scale), bias_ih=r(G * H, s=scale) if biases else None,
             bias_hh=r(G * H, s=scale) if biases else None)
    if op == "lstm":
        a["c0"] = r(N, H) if states else None
    grads = dict(dy=r(T, N, H), dh_n=r(N, H))
    if op == "lstm":
        grads["dc_n"] = r(N, H)
    return op, kw, a, grads


def forward(m, op, kw, a):
    if op == "lstm":
        return m.lstm(a["x"], a["h0"], a["c0"], a["weight_ih"], a["weight_hh"], a["bias_ih"], a["bias_hh"])
    return getattr(m, op)(a["x"], a["h0"], a["weight_ih"], a["weight_hh"], a["bias_ih"], a["bias_hh"], **kw)


def backward(m, op, kw, a, g, out, **opts):
    common = dict(x=a["x"], h0=a["h0"], weight_ih=a["weight_ih"], weight_hh=a["weight_hh"], y=out[0])
    if op == "lstm":
        return m.lstm_backward(g["dy"], g["dh_n"], g["dc_n"], c0=a["c0"], workspace=out[3], **common, **opts)
    if op == "gru":
        return m.gru_backward(g["dy"], g["dh_n"], workspace=out[2], **common, **kw, **opts)
    return m.rnn_backward(g["dy"], g["dh_n"], **common, **kw, **opts)


def assert_close(actual, expected, dtype, k, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    tol = layer_tol(dtype, k, float(np.abs(expected).max()) if expected.size else 1.0)
    bad = ~np.isclose(actual.astype(np.float64), expected, **tol)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} differ; first at {i}: got {actual[i]!r}, "
                             f"expected {expected[i]!r} ({tol})")


def check_against_reference(cell, T, N, I, H, dtype, states=True, biases=True):
    op, kw, a, g = make(cell, T, N, I, H, dtype, states=states, biases=biases)
    G = CELLS[cell][1]
    out = forward(ops, op, kw, a)
    want = forward(ref, op, kw, a)
    k = recurrent_depth(T, N, I, H, G)
    names = {"rnn": ("y", "h_n"), "lstm": ("y", "h_n", "c_n", "workspace"), "gru": ("y", "h_n", "workspace")}[op]
    for name, got, exp in zip(names, out, want):
        assert_close(got, exp, dtype, k, f"{cell} {name} T={T} N={N} I={I} H={H}")
    # backward from the reference's saved values, so that only backward's own rounding is compared
    opts = {} if biases else dict(db_ih=False, db_hh=False)
    got = backward(ops, op, kw, a, g, [w.astype(dtype) for w in want], **opts)
    exp = backward(ref, op, kw, a, g, want, **opts)
    gnames = ("dx", "dh0", "dc0") if op == "lstm" else ("dx", "dh0")
    for name, gv, ev in zip(gnames + ("dW_ih", "dW_hh", "db_ih", "db_hh"), got, exp):
        if ev is None:
            assert gv is None, f"{cell} {name}: expected None (skipped)"
            continue
        assert_close(gv, ev, dtype, k, f"{cell} {name} T={T} N={N} I={I} H={H}")


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("T", [1, 2, 17])
@pytest.mark.parametrize("H", [1, 7, 64])
@pytest.mark.parametrize("N", [1, 5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_backward_match_the_reference(cell, T, H, N, dtype):
    check_against_reference(cell, T, N, 6, H, dtype)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_without_initial_states_or_biases(cell, dtype):
    check_against_reference(cell, 3, 4, 5, 7, dtype, states=False)
    check_against_reference(cell, 3, 4, 5, 7, dtype, biases=False)
    check_against_reference(cell, 1, 2, 3, 5, dtype, states=False, biases=False)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa(isa, cell, dtype):
    # 33 = 2 * 16 + 1 rows and 3H columns past every micro-kernel tile edge
    check_against_reference(cell, 4, 33, 9, 21, dtype)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_1_and_2_threads(cell, dtype):
    # big enough that the GEMMs, the gate loops and the column sums all split between two threads
    op, kw, a, g = make(cell, 3, 48, 40, 96, dtype)
    before = lamina.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            lamina.set_num_threads(n)
            out = forward(ops, op, kw, a)
            results.append(list(out) + list(backward(ops, op, kw, a, g, out)))
    finally:
        lamina.set_num_threads(before)
    for i, (one, two) in enumerate(zip(*results)):
        assert one.tobytes() == two.tobytes(), f"{cell}: result {i} differs between 1 and 2 threads"


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradients_accumulate_skip_and_need_dx(cell):
    op, kw, a, g = make(cell, 3, 2, 4, 5, np.float64)
    out = forward(ops, op, kw, a)
    fresh = backward(ops, op, kw, a, g, out)
    G = CELLS[cell][1]
    given = [np.ones((G * 5, 4)), np.ones((G * 5, 5)), np.ones(G * 5), np.ones(G * 5)]
    acc = backward(ops, op, kw, a, g, out, dW_ih=given[0], dW_hh=given[1], db_ih=given[2], db_hh=given[3],
                   need_dx=False)
    assert acc[0] is None
    for got, arr, want in zip(acc[-4:], given, fresh[-4:]):
        assert got is arr, "the gradient given is the one returned, updated in place"
        np.testing.assert_allclose(got, want + 1.0, rtol=1e-14, atol=1e-14)
    skipped = backward(ops, op, kw, a, g, out, db_ih=False, db_hh=False)
    assert skipped[-2] is None and skipped[-1] is None
    np.testing.assert_array_equal(skipped[-4], fresh[-4])


def test_missing_upstream_gradients_are_zeros():
    op, kw, a, g = make("lstm", 4, 3, 2, 5, np.float64)
    out = ops.lstm(a["x"], a["h0"], a["c0"], a["weight_ih"], a["weight_hh"], a["bias_ih"], a["bias_hh"])
    args = (a["x"], a["h0"], a["c0"], a["weight_ih"], a["weight_hh"], out[0], out[3])
    none = ops.lstm_backward(None, None, None, *args)
    zeros = ops.lstm_backward(np.zeros_like(out[0]), np.zeros_like(out[1]), np.zeros_like(out[2]), *args)
    for u, v in zip(none, zeros):
        np.testing.assert_array_equal(u, v)
    only_last = ops.lstm_backward(None, g["dh_n"], None, *args)
    want = ref.lstm_backward(None, g["dh_n"], None, *args)
    for u, v in zip(only_last, want):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-13)


def test_integer_inputs_are_cast_to_the_weight_dtype():
    op, kw, a, g = make("gru", 2, 3, 4, 5, np.float32)
    x = np.arange(24).reshape(2, 3, 4) % 3
    y, h_n, ws = ops.gru(x, None, a["weight_ih"], a["weight_hh"])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref.gru(x, None, a["weight_ih"], a["weight_hh"])[0], rtol=1e-5, atol=1e-6)


# ---- embedding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (0, 3)])
def test_embedding_matches_the_reference(threads, dtype, shape):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((11, 6)).astype(dtype)
    idx = rng.integers(0, 11, shape)
    y = ops.embedding(idx, W)
    assert y.dtype == dtype and y.shape == shape + (6,)
    np.testing.assert_array_equal(y, ref.embedding(idx, W))
    dy = rng.standard_normal(shape + (6,)).astype(dtype)
    for padding_idx in (None, 0, int(idx.flat[0]) if idx.size else 3):
        dW = ops.embedding_backward(dy, idx, 11, padding_idx=padding_idx)
        want = ref.embedding_backward(dy, idx, 11, padding_idx=padding_idx)
        assert dW.dtype == dtype
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(dW, want, rtol=0, atol=(idx.size + 2) * eps * max(1.0, np.abs(dy).max(initial=0.0)))
        if padding_idx is not None:
            assert not dW[padding_idx].any(), "the padding row takes no gradient"


def test_embedding_backward_accumulates_and_int32_indices_work():
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 4, (5, 3)).astype(np.int32)
    dy = rng.standard_normal((5, 3, 2))
    dW = np.ones((4, 2))
    out = ops.embedding_backward(dy, idx, 4, dW=dW)
    assert out is dW
    np.testing.assert_allclose(dW, 1.0 + ref.embedding_backward(dy, idx, 4), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_backward_is_bitwise_identical_for_1_and_2_threads(dtype):
    # many repeats of few rows: every row sums hundreds of gradients, in index order whatever the split
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 5, 4000)
    dy = rng.standard_normal((4000, 64)).astype(dtype)
    before = lamina.get_num_threads()
    try:
        out = []
        for n in (1, 2):
            lamina.set_num_threads(n)
            out.append(ops.embedding_backward(dy, idx, 5).tobytes())
    finally:
        lamina.set_num_threads(before)
    assert out[0] == out[1]
    sequential = np.zeros((5, 64), dtype)
    for j, k in enumerate(idx):  # the order the kernel promises: index order
        sequential[k] += dy[j]
    assert ops.embedding_backward(dy, idx, 5).tobytes() == sequential.tobytes()


# ---- bad input ----------------------------------------------------------------------------------------

_x, _h = np.ones((3, 2, 4)), np.ones((2, 5))
_wi, _wh = np.ones((20, 4)), np.ones((20, 5))
_gi, _gh = np.ones((15, 4)), np.ones((15, 5))
_ri, _rh = np.ones((5, 4)), np.ones((5, 5))

BAD_CALLS = {
    "lstm 2-D x": lambda m: m.lstm(np.ones((3, 4)), None, None, _wi, _wh),
    "lstm 4-D x": lambda m: m.lstm(np.ones((3, 2, 4, 1)), None, None, _wi, _wh),
    "lstm wrong input size": lambda m: m.lstm(np.ones((3, 2, 6)), None, None, _wi, _wh),
    "lstm weight_hh not 4H rows": lambda m: m.lstm(_x, None, None, _wi, np.ones((15, 5))),
    "lstm h0 wrong shape": lambda m: m.lstm(_x, np.ones((3, 5)), None, _wi, _wh),
    "lstm c0 wrong shape": lambda m: m.lstm(_x, _h, np.ones((2, 4)), _wi, _wh),
    "lstm h0 3-D": lambda m: m.lstm(_x, _h[None], None, _wi, _wh),
    "lstm zero-length sequence": lambda m: m.lstm(np.ones((0, 2, 4)), None, None, _wi, _wh),
    "lstm empty batch": lambda m: m.lstm(np.ones((3, 0, 4)), None, None, _wi, _wh),
    "lstm hidden size 0": lambda m: m.lstm(_x, None, None, np.ones((0, 4)), np.ones((0, 0))),
    "lstm bias wrong length": lambda m: m.lstm(_x, None, None, _wi, _wh, np.ones(5)),
    "lstm complex x": lambda m: m.lstm(_x.astype(np.complex128), None, None, _wi, _wh),
    "lstm_backward workspace wrong shape": lambda m: m.lstm_backward(
        None, None, None, _x, None, None, _wi, _wh, np.ones((3, 2, 5)), np.ones((3, 2, 20))),
    "lstm_backward dy wrong shape": lambda m: m.lstm_backward(
        np.ones((3, 2, 4)), None, None, _x, None, None, _wi, _wh, np.ones((3, 2, 5)), np.ones((3, 2, 25))),
    "lstm_backward read-only dW_hh": lambda m: m.lstm_backward(
        None, None, None, _x, None, None, _wi, _wh, np.ones((3, 2, 5)), np.ones((3, 2, 25)),
        dW_hh=np.broadcast_to(np.zeros(5), (20, 5))),
    "gru wrong gate count": lambda m: m.gru(_x, None, _wi, _wh),
    "gru h0 wrong shape": lambda m: m.gru(_x, np.ones(5), _gi, _gh),
    "gru reset_after not a flag": lambda m: m.gru(_x, None, _gi, _gh, reset_after="yes"),
    "gru_backward dW_ih wrong shape": lambda m: m.gru_backward(
        None, None, _x, None, _gi, _gh, np.ones((3, 2, 5)), np.ones((3, 2, 20)), dW_ih=np.zeros((15, 5))),
    "rnn unknown nonlinearity": lambda m: m.rnn(_x, None, _ri, _rh, nonlinearity="sigmoid"),
    "rnn zero-length sequence": lambda m: m.rnn(np.ones((0, 2, 4)), None, _ri, _rh),
    "rnn_backward y wrong shape": lambda m: m.rnn_backward(None, None, _x, None, _ri, _rh, np.ones((2, 2, 5))),
    "embedding index out of range": lambda m: m.embedding(np.array([0, 7]), np.ones((7, 3))),
    "embedding negative index": lambda m: m.embedding(np.array([[0, -1]]), np.ones((7, 3))),
    "embedding float indices": lambda m: m.embedding(np.array([0.0, 1.0]), np.ones((7, 3))),
    "embedding bool indices": lambda m: m.embedding(np.array([True]), np.ones((7, 3))),
    "embedding 1-D weight": lambda m: m.embedding(np.array([0]), np.ones(7)),
    "embedding_backward index out of range": lambda m: m.embedding_backward(np.ones((2, 3)), np.array([0, 4]), 4),
    "embedding_backward dy shape": lambda m: m.embedding_backward(np.ones((2, 3)), np.array([0, 1, 2]), 4),
    "embedding_backward padding_idx out of range": lambda m: m.embedding_backward(
        np.ones((2, 3)), np.array([0, 1]), 4, padding_idx=4),
    "embedding_backward dW wrong shape": lambda m: m.embedding_backward(
        np.ones((2, 3)), np.array([0, 1]), 4, dW=np.zeros((4, 2))),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_same_exception_as_reference(case):
    call = BAD_CALLS[case]
    with pytest.raises((TypeError, ValueError)) as ref_err:
        call(ref)
    with pytest.raises(ref_err.type) as native_err:
        call(ops)
    assert str(native_err.value), f"{case}: empty error message"


def test_mixed_precision_is_an_error_not_a_silent_cast():
    with pytest.raises(TypeError, match="x has dtype float32 but weight_hh has dtype float64"):
        ops.lstm(_x.astype(np.float32), None, None, _wi, _wh)
    with pytest.raises(TypeError, match="h0"):
        ops.gru(_x, _h.astype(np.float32), _gi, _gh)


def test_messages_name_the_op_and_the_sizes():
    with pytest.raises(ValueError, match=r"lstm: h0 has shape \(3, 5\), expected .*\(2, 5\)"):
        ops.lstm(_x, np.ones((3, 5)), None, _wi, _wh)
    with pytest.raises(ValueError, match=r"lstm: zero-length sequence"):
        ops.lstm(np.ones((0, 2, 4)), None, None, _wi, _wh)
    with pytest.raises(ValueError, match=r"hidden size must be >= 1"):
        ops.gru(_x, None, np.ones((0, 4)), np.ones((0, 0)))
    with pytest.raises(ValueError, match=r"embedding: indices\[0, 1\] = 9 is out of range \[0, 7\)"):
        ops.embedding(np.array([[0, 9]]), np.ones((7, 3)))


RAW_BAD_CALLS = {
    "lstm h0 shape": lambda: _native.lstm(_x, np.ones((3, 5)), None, _wi, _wh, None, None),
    "lstm x 2-D": lambda: _native.lstm(np.ones((3, 4)), None, None, _wi, _wh, None, None),
    "lstm T 0": lambda: _native.lstm(np.ones((0, 2, 4)), None, None, _wi, _wh, None, None),
    "lstm bias float32": lambda: _native.lstm(_x, None, None, _wi, _wh, np.ones(20, np.float32), None),
    "lstm x non-contiguous": lambda: _native.lstm(np.ones((3, 2, 8))[:, :, ::2], None, None, _wi, _wh, None, None),
    "lstm_backward workspace shape": lambda: _native.lstm_backward(
        None, None, None, _x, None, None, _wi, _wh, np.ones((3, 2, 5)), np.ones((3, 2, 20)), None, None, None,
        None, True),
    "lstm_backward dW overlaps weight": lambda: _native.lstm_backward(
        None, None, None, _x, None, None, _wi, _wh, np.ones((3, 2, 5)), np.ones((3, 2, 25)), None, _wh, None,
        None, True),
    "gru_backward dW_ih a list": lambda: _native.gru_backward(
        None, None, _x, None, _gi, _gh, np.ones((3, 2, 5)), np.ones((3, 2, 20)), [[0.0] * 4] * 15, None, None,
        None, True, True),
    "rnn nonlinearity": lambda: _native.rnn(_x, None, _ri, _rh, None, None, "gelu"),
    "embedding index too big": lambda: _native.embedding(np.array([0, 7]), np.ones((7, 3))),
    "embedding int32 indices": lambda: _native.embedding(np.array([0], np.int32), np.ones((7, 3))),
    "embedding_backward padding_idx": lambda: _native.embedding_backward(
        np.ones((2, 3)), np.array([0, 1]), np.zeros((4, 3)), 9),
    "embedding_backward negative index": lambda: _native.embedding_backward(
        np.ones((2, 3)), np.array([0, -1]), np.zeros((4, 3)), -1),
    "embedding_backward dW read-only": lambda: _native.embedding_backward(
        np.ones((2, 3)), np.array([0, 1]), np.broadcast_to(np.zeros(3), (4, 3)), -1),
}


@pytest.mark.parametrize("case", sorted(RAW_BAD_CALLS))
def test_bindings_check_everything_themselves(case):
    with pytest.raises((TypeError, ValueError)):
        RAW_BAD_CALLS[case]()


# ---- the gate nonlinearities across the float range ------------------------------------------------

def _gate_inputs():
    """Every float32 order of magnitude, both signs, the tanh polynomial's switch at 0.625, the
    saturation points, zero and the extremes."""
    mags = np.concatenate([np.geomspace(1e-38, 100.0, 4000), np.linspace(0.0, 20.0, 4001),
                           [0.6249999, 0.625, 0.6250001, 87.3, 88.7, 89.0, 1e10, 3.4e38]])
    return np.concatenate([mags, -mags]).astype(np.float32)


def test_lstm_gates_are_sigmoid_and_tanh_to_a_few_ulps(isa):
    # H = I = 1, unit input weights, no biases, no state: every gate's pre-activation is x itself,
    # and the workspace holds sigmoid(x) (i, f, o) and tanh(x) (g).
    x = _gate_inputs()
    ones = np.ones((4, 1), np.float32)
    y, h_n, c_n, ws = ops.lstm(x.reshape(1, -1, 1), None, None, ones, ones)
    x64 = x.astype(np.float64)
    sigmoid = np.where(x64 >= 0, 1 / (1 + np.exp(-np.abs(x64))), np.exp(-np.abs(x64)) / (1 + np.exp(-np.abs(x64))))
    for name, got, want in (("sigmoid", ws[0, :, 0], sigmoid), ("tanh", ws[0, :, 2], np.tanh(x64))):
        ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        tiny = np.finfo(np.float32).tiny  # results below it are denormal or flushed: an absolute bound
        err = np.abs(got.astype(np.float64) - want) / np.maximum(ulp, tiny)
        worst = int(np.argmax(err))
        assert err[worst] <= 4, f"{isa} {name}({x[worst]!r}) = {got[worst]!r}, expected {want[worst]!r} " \
                                f"({err[worst]:.1f} ulps)"
    nan = ops.lstm(np.full((1, 1, 1), np.nan, np.float32), None, None, ones, ones)[3]
    assert np.isnan(nan).all(), "NaN propagates through the gates"
