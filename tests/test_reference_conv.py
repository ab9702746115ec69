"""lamina.reference.conv against central finite differences (float64) and against
torch.nn.functional.conv2d (channels_first, float64; skipped when torch is missing)."""
import numpy as np
import pytest

from lamina import reference as ref

CASES = [  # (N, C, H, W, Cout, kh, kw, stride, padding, dilation, groups)
    (2, 2, 5, 6, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 4, 7, 6, 4, 3, 2, (2, 1), (0, 2, 1, 0), (1, 2), 2),
    (2, 3, 6, 6, 3, 2, 2, (1, 3), (1, 0, 0, 1), (2, 1), 3),
]


def make(case, layout, seed=0):
    N, C, H, W, Co, kh, kw, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W) if layout == "channels_first" else (N, H, W, C))
    w = rng.standard_normal((Co, C // groups, kh, kw) if layout == "channels_first" else (kh, kw, C // groups, Co))
    return x, w, rng.standard_normal(Co), dict(stride=stride, padding=padding, dilation=dilation,
                                               groups=groups, layout=layout)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_backward_matches_central_differences(case, layout, ref_tol):
    x, w, b, geo = make(case, layout)
    dy = np.random.default_rng(3).standard_normal(ref.conv2d(x, w, b, **geo).shape)
    dx, dW, db = ref.conv2d_backward(dy, x, w, **geo)
    h = ref_tol.fd_h
    rng = np.random.default_rng(4)
    for name, arr, grad in (("x", x, dx), ("w", w, dW), ("b", b, db)):
        for flat in rng.choice(arr.size, size=min(arr.size, 12), replace=False):
            i = np.unravel_index(flat, arr.shape)
            old = arr[i]
            arr[i] = old + h
            up = np.sum(dy * ref.conv2d(x, w, b, **geo))
            arr[i] = old - h
            down = np.sum(dy * ref.conv2d(x, w, b, **geo))
            arr[i] = old
            fd = (up - down) / (2 * h)
            assert abs(grad[i] - fd) <= ref_tol.fd_atol + ref_tol.fd_rtol * abs(fd), \
                f"d{name}{i}: analytic {grad[i]!r}, central difference {fd!r}"


@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_torch(case, ref_tol):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b, geo = make(case, "channels_first")
    top, bottom, left, right = geo["padding"]
    xt = torch.tensor(np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = F.conv2d(xt, wt, bt, stride=geo["stride"], dilation=geo["dilation"], groups=geo["groups"])
    y = ref.conv2d(x, w, b, **geo)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=ref_tol.torch_rtol, atol=ref_tol.torch_atol)
    dy = np.random.default_rng(5).standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dW, db = ref.conv2d_backward(dy, x, w, **geo)
    dxt = xt.grad.numpy()[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    for name, a, e in (("dx", dx, dxt), ("dW", dW, wt.grad.numpy()), ("db", db, bt.grad.numpy())):
        np.testing.assert_allclose(a, e, rtol=ref_tol.torch_rtol, atol=ref_tol.torch_atol, err_msg=name)


def test_channels_last_is_channels_first_transposed():
    x, w, b, geo = make(CASES[1], "channels_first")
    y = ref.conv2d(x, w, b, activation="gelu", **geo)
    y_last = ref.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), b, activation="gelu",
                        **{**geo, "layout": "channels_last"})
    np.testing.assert_allclose(y_last, y.transpose(0, 2, 3, 1), rtol=1e-14, atol=1e-14)
