"""A two-layer network written by hand on the raw kernels in `lamina.ops`:
h = relu(W1 x + b1); y = relu(W2 h + b2). Counts its parameters, takes one forward / backward /
SGD step on random data, and checks that lm.Sequential with the same weights computes the same y.
"""
import numpy as np

import lamina as lm

n_in, n_hidden, n_out, batch = 4, 8, 3, 16
rng = np.random.default_rng(0)

# Weights are (out, in) as in PyTorch; x holds one example per row, so "W x" is x @ W.T.
W1 = rng.uniform(-0.5, 0.5, (n_hidden, n_in)).astype(np.float32)
b1 = np.zeros(n_hidden, dtype=np.float32)
W2 = rng.uniform(-0.5, 0.5, (n_out, n_hidden)).astype(np.float32)
b2 = np.zeros(n_out, dtype=np.float32)
params = [W1, b1, W2, b2]
print(f"parameters: {sum(p.size for p in params)} "
      f"({n_in}*{n_hidden} + {n_hidden} + {n_hidden}*{n_out} + {n_out})")

x = rng.standard_normal((batch, n_in)).astype(np.float32)
target = rng.random((batch, n_out), dtype=np.float32)

# Forward: each layer is one GEMM with the bias and ReLU fused into its write-back.
h = lm.ops.linear(x, W1, b1, activation="relu")
y = lm.ops.linear(h, W2, b2, activation="relu")
loss, dy = lm.ops.mse(y, target)

# Backward: through each ReLU (from its output), then the layer's three products.
dz2 = lm.ops.relu_backward(dy, y)
dh, dW2, db2 = lm.ops.linear_backward(dz2, h, W2)
dz1 = lm.ops.relu_backward(dh, h)
_, dW1, db1 = lm.ops.linear_backward(dz1, x, W1, need_dx=False)

# The same network as a model, with the same weights (before the update), must agree exactly.
model = lm.Sequential(lm.Linear(n_in, n_hidden), lm.ReLU(), lm.Linear(n_hidden, n_out), lm.ReLU())
model.load_state_dict({"0.weight": W1, "0.bias": b1, "2.weight": W2, "2.bias": b2})
print(model.summary())
print(f"Sequential gives the same y: {np.array_equal(model(x), y)}")

# SGD step, in place.
for p, g in zip(params, (dW1, db1, dW2, db2)):
    lm.ops.sgd_step(p, g, lr=0.1)
h = lm.ops.linear(x, W1, b1, activation="relu")
loss_after, _ = lm.ops.mse(lm.ops.linear(h, W2, b2, activation="relu"), target)
print(f"MSE before the step {loss:.4f}, after {loss_after:.4f}")
