"""Keras-style seed network: 8 inputs -> Dense(6, relu) -> Dense(6, relu) -> Dense(4, softmax),
124 parameters. Builds it, prints the summary, and takes one SGD step on random data the Keras way
(compile, then train_step: forward, loss, backward and update in one call).
"""
import numpy as np

import lamina as lm

lm.manual_seed(0)
model = lm.Sequential([
    lm.Dense(units=6, input_shape=(8,), activation="relu"),
    lm.Dense(units=6, activation="relu"),
    lm.Dense(units=4, activation="softmax"),
])
print(model.summary())

rng = np.random.default_rng(0)
x = rng.standard_normal((32, 8)).astype(np.float32)
y = rng.integers(0, 4, size=32)  # class labels

# The last layer already applies softmax, so the loss is Keras's cross-entropy on probabilities.
model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss="sparse_categorical_crossentropy")
loss_before = model.train_step(x, y)  # the loss of the batch before the update
probs = model.predict(x)
loss_after = float(-np.mean(np.log(probs[np.arange(len(y)), y])))
print(f"output shape {probs.shape}, rows sum to 1: {np.allclose(probs.sum(axis=1), 1, atol=1e-5)}")
print(f"cross-entropy before the step {loss_before:.4f}, after {loss_after:.4f}")
