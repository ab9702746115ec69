"""PyTorch-style seed network: Linear(784, 30), ReLU, eight times (Linear(30, 30), ReLU), then
Linear(30, 1): 31,021 parameters. Builds it, prints the summary, and takes one explicit
forward / loss / backward / SGD step on random data, as a PyTorch training loop would.
"""
import numpy as np

import lamina as lm

lm.manual_seed(0)
hidden = []
for _ in range(8):
    hidden += [lm.Linear(30, 30), lm.ReLU()]
model = lm.Sequential(lm.Linear(784, 30), lm.ReLU(), *hidden, lm.Linear(30, 1))
print(model)
print(model.summary())

rng = np.random.default_rng(0)
x = rng.random((64, 784), dtype=np.float32)  # e.g. 64 flattened 28x28 images
y = rng.integers(0, 2, size=(64, 1)).astype(np.float32)  # a binary target per image

loss_fn = lm.BCEWithLogitsLoss()
optimizer = lm.SGD(model.parameters(), lr=0.1, momentum=0.9)

optimizer.zero_grad()
loss = loss_fn(model(x), y)
model.backward(loss_fn.backward())  # gradients accumulate into p.grad
optimizer.step()

print(f"parameters: {model.num_parameters():,}")
print(f"BCE before the step {loss:.4f}, after {loss_fn(model(x), y):.4f}")
