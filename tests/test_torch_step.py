"""One training step of lamina against PyTorch from the same weights: the loss, every gradient and every
updated weight agree within float32 tolerance. Covers the Keras seed network (8-6-6-4, softmax, cross-
entropy) and the deep PyTorch-style seed network (784 -> 30, eight 30 -> 30, 30 -> 1: ten Linear layers, MSE), plus moving weights and data between them.
"""

import lamina as lm
import numpy as np
import pytest

torch = pytest.importorskip("torch")

# float32 on both sides, different summation orders: each dot product of K terms is off by at most
# ~K * eps relative to sum |a||b| (eps = 6e-8), i.e. ~5e-5 for K = 784 in the worst case and ~1e-6
# typically; ten layers compound that a few times. rtol 1e-4 with an absolute floor of 1e-4 times
# the tensor's largest value leaves that margin while any wrong formula (an O(1) error) fails.
RTOL = 1e-4
ATOL_SCALE = 1e-4


def _close(name, got, want, floor=0.0):
    """|got - want| <= atol + RTOL |want| elementwise, atol = ATOL_SCALE max|want| (+ `floor`)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs torch {want.shape}"
    atol = ATOL_SCALE * max(float(np.abs(want).max(initial=0.0)), 1e-30) + floor
    bad = np.abs(got - want) > atol + RTOL * np.abs(want)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise AssertionError(f"{name}{list(i)}: lamina {got[i]!r} vs torch {want[i]!r} "
                             f"({int(bad.sum())} of {bad.size} elements outside rtol {RTOL}, atol {np.max(atol):.3g})")


def _torch_params(net):
    return [p for p in net.parameters()]


def _check_step(make_lamina, torch_net, x, y, torch_loss, lamina_loss, lr, momentum=0.0, steps=1):
    """Run `steps` SGD steps in both frameworks from the same weights and compare everything."""
    # Two lamina copies of the same weights: one steps through model.train_step (the path fit
    # uses), the other runs forward/backward by hand so its gradients can be read.
    stepped, manual = make_lamina(), make_lamina()
    stepped.compile(optimizer=lm.SGD(stepped.parameters(), lr=lr, momentum=momentum), loss=lamina_loss)
    manual_opt = lm.SGD(manual.parameters(), lr=lr, momentum=momentum)
    torch_opt = torch.optim.SGD(torch_net.parameters(), lr=lr, momentum=momentum)
    names = [name for name, _ in stepped.named_parameters()]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    for step in range(steps):
        before = [p.detach().numpy().astype(np.float64) for p in _torch_params(torch_net)]
        torch_opt.zero_grad()
        t_loss = torch_loss(torch_net(xt), yt)
        t_loss.backward()

        manual_opt.zero_grad()
        m_loss = lamina_loss(manual(x), y)
        manual.backward(lamina_loss.backward())
        s_loss = stepped.train_step(x, y)

        _close(f"step {step} loss (manual)", m_loss, t_loss.item())
        _close(f"step {step} loss (train_step)", s_loss, t_loss.item())
        for name, p, tp in zip(names, manual.parameters(), _torch_params(torch_net)):
            _close(f"step {step} grad {name}", p.grad, tp.grad.numpy())

        torch_opt.step()
        manual_opt.step()
        for name, p, q, tp, w0 in zip(names, manual.parameters(), stepped.parameters(), _torch_params(torch_net), before):
            want = tp.detach().numpy()
            _close(f"step {step} updated {name} (manual)", p.data, want)
            _close(f"step {step} updated {name} (train_step)", q.data, want)
            # The update itself, which can be far smaller than the weights (deep layers of the
            # 784 network move by ~1e-5): compared to torch's update, allowing one float32
            # rounding of the new weight (2 eps |w|) on top.
            delta = want - w0
            assert np.abs(delta).max() > 0, f"step {step}: torch did not move {name}"
            floor = 2 * np.finfo(np.float32).eps * np.abs(w0)
            _close(f"step {step} update of {name} (manual)", p.data - w0, delta, floor)
            _close(f"step {step} update of {name} (train_step)", q.data - w0, delta, floor)


def _keras_network(torch_net):
    def make():
        model = lm.Sequential([
            lm.Dense(units=6, input_shape=(8,), activation="relu"),
            lm.Dense(units=6, activation="relu"),
            lm.Dense(units=4, activation="softmax"),
        ])
        # Keras layout both ways: kernels (in, out) = torch weight transposed.
        model.set_weights([p.detach().numpy().T if p.ndim == 2 else p.detach().numpy() for p in torch_net.parameters()])
        return model
    return make


@pytest.mark.parametrize("momentum, steps", [(0.0, 1), (0.9, 3)])
def test_keras_seed_network_step_matches_torch(momentum, steps):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU(),
                              torch.nn.Linear(6, 4), torch.nn.Softmax(dim=1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    make = _keras_network(net)
    # CrossEntropyLoss takes the softmax output as its logits, in both frameworks alike.
    _check_step(make, net, x, y, torch.nn.CrossEntropyLoss(), lm.CrossEntropyLoss(), lr=0.5,
                momentum=momentum, steps=steps)


@pytest.mark.parametrize("momentum, steps", [(0.0, 1), (0.9, 2)])
def test_784_30x9_1_network_step_matches_torch(momentum, steps):
    torch.manual_seed(1)
    hidden = 9  # Linear(784, 30), then eight Linear(30, 30): the seed's ten Linear layers with the last
    layers = [torch.nn.Linear(784, 30), torch.nn.ReLU()]
    for _ in range(hidden - 1):
        layers += [torch.nn.Linear(30, 30), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(30, 1))

    def make():
        model = lm.Sequential(*[lm.Linear(m.in_features, m.out_features) if isinstance(m, torch.nn.Linear) else lm.ReLU()
                                for m in net])
        # PyTorch's own state_dict, tensors and all: same keys and shapes as lamina's.
        model.load_state_dict(net.state_dict())
        assert model.num_parameters() == 31_021
        return model

    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, size=(64, 784)).astype(np.float32)
    y = rng.normal(size=(64, 1)).astype(np.float32)
    _check_step(make, net, x, y, torch.nn.MSELoss(), lm.MSELoss(), lr=0.05, momentum=momentum, steps=steps)


def test_weights_move_both_ways_and_tensors_are_inputs():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    model = lm.Sequential(lm.Linear(5, 3), lm.Tanh(), lm.Linear(3, 2))
    model.load_state_dict(net.state_dict())
    x = torch.randn(10, 5)
    _close("forward", model(x), net(x).detach().numpy())
    _close("predict", model.predict(x), net(x).detach().numpy())

    # Train in lamina on tensors, then copy back into torch: the outputs agree again.
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    model.fit(x, torch.randint(0, 2, (10,)), epochs=2, batch_size=4, verbose=0)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    _close("after training", model.predict(x), net(x).detach().numpy())
