"""lm.save / lm.load: exact round trips, optimizer state that resumes training bit for bit, atomic
writes that survive an interrupted save, and clean ValueErrors for damaged or hostile files.
"""

import io
import json
import os
import zipfile

import lamina as lm
import numpy as np
import pytest


def _torch_style(seed=0, dtype=np.float32):
    lm.manual_seed(seed)
    return lm.Sequential(lm.Linear(10, 7, dtype=dtype), lm.ReLU(), lm.Linear(7, 7, bias=False, dtype=dtype),
                         lm.Tanh(), lm.Linear(7, 3, dtype=dtype), lm.Softmax())


def _keras_style(seed=0):
    lm.manual_seed(seed)
    return lm.Sequential([
        lm.Dense(units=6, input_shape=(8,), activation="relu"),
        lm.Dense(units=6, activation="relu"),
        lm.Dense(units=4, activation="softmax"),
    ])


def _inputs(n, features, seed=1):
    return np.random.default_rng(seed).normal(size=(n, features)).astype(np.float32)


def _read_members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _header(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["lamina_config"]))


def _with_header(src, dst, edit):
    """Copy a saved file, passing its JSON header through `edit` (which returns the new text)."""
    members = _read_members(src)
    members["lamina_config.npy"] = _npy(np.array(edit(_header(src))))
    _write_members(dst, members)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    lm.save(_keras_style(), path)
    return path


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("make, features", [
    (_torch_style, 10),
    (_keras_style, 8),
    (lambda: _torch_style(dtype=np.float64), 10),
    (lambda: lm.Linear(5, 2), 5),
], ids=["torch", "keras", "float64", "layer"])
def test_round_trip_is_exact(tmp_path, make, features):
    model = make()
    path = tmp_path / "m.npz"
    lm.save(model, path)
    loaded = lm.load(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert loaded.get_config() == model.get_config()
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    x = _inputs(9, features)
    out, out_loaded = model(x), loaded(x)
    assert out.dtype == out_loaded.dtype and np.array_equal(out, out_loaded), "outputs differ after load"


def test_round_trip_of_a_lazily_built_keras_model(tmp_path):
    lm.manual_seed(0)
    model = lm.Sequential([lm.Dense(5, activation="tanh"), lm.Dense(2)])
    x = _inputs(4, 3)
    y = model(x)  # builds the first layer
    lm.save(model, tmp_path / "m.npz")
    loaded = lm.load(tmp_path / "m.npz")
    assert np.array_equal(loaded(x), y)


def test_file_is_a_plain_npz_numpy_reads_without_pickle(saved):
    with np.load(saved, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["lamina_config", "model/0.bias", "model/0.weight", "model/1.bias",
                                     "model/1.weight", "model/2.bias", "model/2.weight"]
        assert npz["model/0.weight"].shape == (6, 8)
        header = json.loads(str(npz["lamina_config"]))
    assert header["format"] == "lamina" and header["version"] == 1
    assert header["model"]["class"] == "Sequential"
    assert header["weights"]["2.weight"] == {"shape": [4, 6], "dtype": "float32"}


def test_save_writes_exactly_the_given_path_and_nothing_else(tmp_path):
    lm.save(_keras_style(), str(tmp_path / "weights"))
    assert sorted(os.listdir(tmp_path)) == ["weights"]
    lm.save(_keras_style(1), tmp_path / "weights")  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["weights"]
    loaded = lm.load(tmp_path / "weights")
    assert np.array_equal(loaded[0].weight.data, _keras_style(1)[0].weight.data)


# ---------------------------------------------------------------------------------------------
# Optimizer state: resume exactly


def _batches(steps, seed=5):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(16, 8)).astype(np.float32), rng.integers(0, 4, 16)) for _ in range(steps)]


@pytest.mark.parametrize("make_opt", [lambda p: lm.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                      lambda p: lm.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3)],
                         ids=["sgd-momentum", "adam"])
def test_optimizer_state_round_trip_resumes_identically(tmp_path, make_opt):
    batches = _batches(6)
    model = _keras_style()
    model.compile(optimizer=make_opt(model.parameters()), loss=lm.CrossEntropyLoss())
    for xb, yb in batches[:3]:
        model.train_step(xb, yb)
    lm.save(model, tmp_path / "ckpt.npz", optimizer=model.optimizer)
    continued = [model.train_step(xb, yb) for xb, yb in batches[3:]]

    resumed, opt = lm.load(tmp_path / "ckpt.npz", with_optimizer=True)
    assert type(opt) is type(model.optimizer) and opt.get_config() == model.optimizer.get_config()
    assert all(p is q for p, q in zip(opt.params, resumed.parameters())), "optimizer is not over the new model"
    # Saved while compiled: the loaded model is compiled again with the same loss and optimizer.
    assert resumed.optimizer is opt and isinstance(resumed.loss, lm.CrossEntropyLoss)
    replayed = [resumed.train_step(xb, yb) for xb, yb in batches[3:]]
    assert replayed == continued, f"losses after resuming {replayed} != {continued}"
    for k, v in model.state_dict().items():
        assert np.array_equal(v, resumed.state_dict()[k]), f"{k} differs after resuming"


def test_optimizer_without_compile_round_trip(tmp_path):
    model = lm.Sequential(lm.Linear(8, 4))
    opt = lm.Adam(model.parameters(), lr=0.05)
    loss_fn = lm.CrossEntropyLoss()
    for xb, yb in _batches(2):
        opt.zero_grad()
        loss_fn(model(xb), yb)
        model.backward(loss_fn.backward())
        opt.step()
    lm.save(model, tmp_path / "m.npz", optimizer=opt)
    loaded, opt2 = lm.load(tmp_path / "m.npz", with_optimizer=True)
    assert opt2.step_count == 2 and not hasattr(loaded, "_compiled")
    for k, v in opt.state_dict().items():
        got = opt2.state_dict()[k]
        assert np.array_equal(got, v) if isinstance(v, np.ndarray) else got == v, k
    assert isinstance(lm.load(tmp_path / "m.npz"), lm.Sequential)  # the optimizer part is optional to read


def test_with_optimizer_on_a_file_without_one_raises(saved):
    with pytest.raises(ValueError, match="no optimizer state"):
        lm.load(saved, with_optimizer=True)


def test_keras_string_loss_survives_the_round_trip(tmp_path):
    model = _keras_style()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    lm.save(model, tmp_path / "m.npz", optimizer=model.optimizer)
    loaded, _ = lm.load(tmp_path / "m.npz", with_optimizer=True)
    x, y = _batches(1)[0]
    assert loaded.evaluate(x, y) == model.evaluate(x, y)


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _snapshot(directory):
    return {name: (directory / name).read_bytes() for name in os.listdir(directory)}


def test_save_interrupted_while_writing_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    lm.save(_keras_style(0), path)
    before = _snapshot(tmp_path)
    real_savez = np.savez

    def savez_then_fail(file, **arrays):
        real_savez(file, **arrays)  # a complete archive has reached the temporary file ...
        file.write(b"partial")
        raise OSError("disk full")  # ... when the writer dies

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        lm.save(_keras_style(1), path)
    assert _snapshot(tmp_path) == before, "the previous file changed or a temporary file was left behind"
    monkeypatch.undo()
    assert np.array_equal(lm.load(path)[0].weight.data, _keras_style(0)[0].weight.data)


@pytest.mark.parametrize("error", [OSError("rename failed"), KeyboardInterrupt()])
def test_save_interrupted_at_rename_leaves_previous_file(tmp_path, monkeypatch, error):
    path = tmp_path / "model.npz"
    lm.save(_keras_style(0), path)
    before = _snapshot(tmp_path)

    def fail(src, dst):
        assert os.path.exists(src) and os.path.dirname(src) == str(tmp_path), "temporary file not in the target's directory"
        raise error

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(type(error)):
        lm.save(_keras_style(1), path)
    assert _snapshot(tmp_path) == before


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    def fail(file, **arrays):
        raise RuntimeError("boom")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(RuntimeError):
        lm.save(_keras_style(), tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Damaged and hostile files


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1, -22])
def test_truncated_file_raises(saved, tmp_path, keep):
    data = saved.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[:cut])
    with pytest.raises(ValueError, match="bad.npz"):
        lm.load(bad)


def test_garbage_and_plain_npy_raise(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not a zip"):
        lm.load(garbage)
    npy = tmp_path / "array.npz"
    np.save(npy, np.zeros(3))
    os.replace(str(npy) + ".npy", npy)
    with pytest.raises(ValueError, match="not a zip"):
        lm.load(npy)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        lm.load(tmp_path / "nope.npz")


def test_flipped_byte_in_weight_data_is_caught_by_the_crc(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("model/1.weight.npy")
    # The member's data starts after its 30-byte local header, name and extra field; its last
    # bytes are weight values, past the .npy header.
    end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
    data[end - 3] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.npz"):
        lm.load(bad)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "does not describe a lamina model"),
    ('{"format": "keras"}', "does not describe a lamina model"),
    ('{"format": "lamina", "version": 99}', "version"),
    ('{"format": "lamina", "version": 1, "model": [], "weights": {}}', "model"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
])
def test_tampered_json_raises(saved, tmp_path, text, match):
    bad = tmp_path / "bad.npz"
    _with_header(saved, bad, lambda header: text)
    with pytest.raises(ValueError, match=match):
        lm.load(bad)


def test_unknown_layer_class_raises(saved, tmp_path):
    def edit(header):
        header["model"]["layers"][1]["class"] = "os.system"
        return json.dumps(header)

    bad = tmp_path / "bad.npz"
    _with_header(saved, bad, edit)
    with pytest.raises(ValueError, match="unknown layer class 'os.system'"):
        lm.load(bad)


def test_architecture_that_does_not_match_the_weights_raises(saved, tmp_path):
    def edit(header):
        header["model"]["layers"][2]["units"] = 5  # 4 classes were saved
        return json.dumps(header)

    bad = tmp_path / "bad.npz"
    _with_header(saved, bad, edit)
    with pytest.raises(ValueError, match="bad.npz"):
        lm.load(bad)


def test_huge_declared_architecture_is_refused_before_allocating(saved, tmp_path):
    def edit(header):
        header["model"] = {"class": "Sequential", "layers": [
            {"class": "Linear", "in_features": 10**6, "out_features": 10**6}]}
        header["weights"] = {}
        return json.dumps(header)

    bad = tmp_path / "bad.npz"
    _with_header(saved, bad, edit)
    members = _read_members(bad)
    _write_members(bad, {k: v for k, v in members.items() if not k.startswith("model/")})
    with pytest.raises(ValueError, match="asks for 1000001000000 parameters"):
        lm.load(bad)


@pytest.mark.parametrize("array", [np.zeros((6, 7), np.float32), np.zeros((8, 6), np.float32),
                                   np.zeros((6, 8), np.float64), np.zeros((6, 8), np.int32), np.zeros(48, np.float32)])
def test_wrong_shape_or_dtype_array_raises(saved, tmp_path, array):
    members = _read_members(saved)
    members["model/0.weight.npy"] = _npy(array)
    bad = tmp_path / "bad.npz"
    _write_members(bad, members)
    with pytest.raises(ValueError, match="weight '0.weight' has"):
        lm.load(bad)


def test_missing_and_extra_arrays_raise(saved, tmp_path):
    members = _read_members(saved)
    bad = tmp_path / "bad.npz"
    _write_members(bad, {k: v for k, v in members.items() if k != "model/2.bias.npy"})
    with pytest.raises(ValueError, match="2.bias"):
        lm.load(bad)
    _write_members(bad, {**members, "model/3.weight.npy": _npy(np.zeros(2, np.float32))})
    with pytest.raises(ValueError, match="unexpected arrays"):
        lm.load(bad)
    _write_members(bad, {**members, "notes.txt": b"hello"})
    with pytest.raises(ValueError, match="unexpected member"):
        lm.load(bad)
    _write_members(bad, {k: v for k, v in members.items() if k != "lamina_config.npy"})
    with pytest.raises(ValueError, match="lamina_config"):
        lm.load(bad)


class _Boom:
    def __reduce__(self):
        # Unpickling this would create a file: the test checks that never happens.
        return (open, ("/nonexistent-dir/pwned", "w"))


def test_pickled_object_array_is_refused_without_unpickling(saved, tmp_path):
    members = _read_members(saved)
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
    members["model/0.weight.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    _write_members(bad, members)
    with pytest.raises(ValueError, match="dtype object"):
        lm.load(bad)
    members["lamina_config.npy"] = buf.getvalue()
    _write_members(bad, members)
    with pytest.raises(ValueError, match="lamina_config"):
        lm.load(bad)


def test_tampered_optimizer_state_raises(tmp_path):
    model = _keras_style()
    opt = lm.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "m.npz"
    lm.save(model, path, optimizer=opt)
    members = _read_members(path)
    bad = tmp_path / "bad.npz"

    wrong = dict(members)
    wrong["optimizer/velocity.0.npy"] = _npy(np.zeros((6, 9), np.float32))
    _write_members(bad, wrong)
    with pytest.raises(ValueError, match="velocity.0"):
        lm.load(bad, with_optimizer=True)

    def edit(header):
        header["optimizer"]["config"]["class"] = "LBFGS"
        return json.dumps(header)

    _with_header(path, bad, edit)
    with pytest.raises(ValueError, match="unknown optimizer"):
        lm.load(bad, with_optimizer=True)

    def edit_scalar(header):
        header["optimizer"]["scalars"]["lr"] = -1.0
        return json.dumps(header)

    _with_header(path, bad, edit_scalar)
    with pytest.raises(ValueError, match="lr"):
        lm.load(bad, with_optimizer=True)
