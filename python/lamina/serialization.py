"""Saving and loading models: `save` writes one .npz (architecture and optional optimizer state as JSON,
weights as arrays) atomically; `load` rebuilds the model from lamina's known layer classes only.

Nothing in a file is ever executed: no pickle, JSON parsed with `json`, every array header checked
against the architecture before its data is read, and any damage reported as a ValueError.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Optional, Union, overload

import numpy as np

from . import _registry

if TYPE_CHECKING:
    from .module import Module
    from .optim import Optimizer

__all__ = ["load", "save"]

FORMAT = "lamina"
VERSION = 1
CONFIG_KEY = "lamina_config"
_MODEL_PREFIX = "model/"
_OPTIM_PREFIX = "optimizer/"
# The JSON of a real model is a few kB; the cap stops a hostile header from claiming gigabytes.
_MAX_CONFIG_CHARS = 1 << 22
# Architectures up to this many parameters are cheap to build even when the file stores fewer.
_FREE_PARAMETERS = 1 << 20

# What a damaged archive can raise while being read; each becomes one ValueError naming the file.
# (NumPy parses a damaged .npy header with the tokenize module, which raises its own TokenError.)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                TypeError, IndexError, NotImplementedError, RuntimeError, OverflowError, MemoryError, struct.error,
                tokenize.TokenError, SyntaxError)


class _FileError(ValueError):
    """A problem with a file's content, already worded for the user."""


# ---------------------------------------------------------------------------------------------
# save


def save(model: Module, path: Union[str, os.PathLike[str]], optimizer: Optional[Optimizer] = None) -> None:
    """Write a model (and optionally its optimizer) to one ``.npz`` file, atomically.

    The archive holds ``lamina_config`` (JSON text: format, version, ``model.get_config()``, a
    list of the weights, and when asked the optimizer's config and scalar state plus the compiled
    loss and metrics), one array per weight (``model/0.weight``, ...) and one per optimizer buffer
    (``optimizer/velocity.0``, ...); ``np.load(path)`` reads it too. Everything is written to a
    temporary file in the same directory, flushed and fsynced, then renamed over ``path``: an
    interrupted save leaves any previous file untouched and no partial file behind.

    Args:
        model: a lamina model (``Sequential`` or a single layer).
        path: file name (str or path-like), written as given (no suffix is added).
        optimizer: an optimizer whose state to save so training can resume (see `load`).

    Example::

        >>> lm.save(model, "model.npz", optimizer=opt)
        >>> model, opt = lm.load("model.npz", with_optimizer=True)
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    weights: dict[str, dict[str, Any]] = {}
    for name, value in model.state_dict().items():
        value = np.require(value, requirements="C")  # ascontiguousarray would make a 0-d counter 1-d
        arrays[_MODEL_PREFIX + name] = value
        weights[name] = {"shape": list(value.shape), "dtype": value.dtype.name}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "model": model.get_config(), "weights": weights}
    if optimizer is not None:
        scalars: dict[str, Any] = {}
        buffers: dict[str, dict[str, Any]] = {}
        for key, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[_OPTIM_PREFIX + key] = np.ascontiguousarray(value)
                buffers[key] = {"shape": list(value.shape), "dtype": value.dtype.name}
            else:
                scalars[key] = value.item() if isinstance(value, np.generic) else value
        header["optimizer"] = {"config": optimizer.get_config(), "scalars": scalars, "buffers": buffers}
        training = _training_config(model, optimizer)
        if training is not None:
            header["training"] = training
    arrays[CONFIG_KEY] = np.array(json.dumps(header))
    _write_atomically(path, arrays)


def _training_config(model, optimizer):
    """The compiled loss and metric names, when `optimizer` is the model's compiled one."""
    state = getattr(model, "_compiled", None)
    if state is None or state.optimizer is not optimizer:
        return None
    if isinstance(state.loss_spec, str):
        loss = {"name": state.loss_spec}
    elif callable(getattr(state.loss, "get_config", None)):
        loss = {"config": state.loss.get_config()}
    else:
        return None
    return {"loss": loss, "metrics": [m for m in state.metric_specs if isinstance(m, str)]}


def _write_atomically(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never write into an existing file; mode 0o666 lets the umask decide, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # Makes the rename itself durable on POSIX; Windows cannot open a directory this way.
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# load


@overload
def load(path: Union[str, os.PathLike[str]], with_optimizer: Literal[False] = False) -> Module: ...
@overload
def load(path: Union[str, os.PathLike[str]], with_optimizer: Literal[True]) -> tuple[Module, Optimizer]: ...
def load(path: Union[str, os.PathLike[str]], with_optimizer: bool = False) -> Union[Module, tuple[Module, Optimizer]]:
    """Rebuild a model saved by `save`.

    Only lamina's registered classes can be built (`_registry`); nothing
    from the file runs. Before the model is returned every part is checked: the archive's
    structure, the JSON, each array's header (shape and dtype against the architecture, before
    its data is read) and its data (the zip CRC).

    Args:
        path: a file written by `save`.
        with_optimizer: also rebuild the saved optimizer over the new model's parameters, with its
            state (momentum buffers, Adam moments and step count), so training resumes exactly.
            If the model was compiled with that optimizer when saved, it is compiled again with the
            same loss and metrics, ready for ``fit``.

    Returns:
        The model, or ``(model, optimizer)`` with ``with_optimizer=True``.

    Raises:
        FileNotFoundError: no such file (other errors opening it propagate too).
        ValueError: the file is not a lamina model or is damaged: not a zip archive, truncated,
            bad JSON, missing or unexpected arrays, wrong shapes or dtypes, unknown classes, or no
            optimizer state when ``with_optimizer=True``.

    Example::

        >>> model = lm.load("model.npz")
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            loaded: Union[Module, tuple[Module, Optimizer]] = _Reader(f).load(with_optimizer)
            return loaded
        except _FileError as e:
            raise ValueError(f"{path}: {e}") from None
        except _READ_ERRORS as e:
            raise ValueError(f"{path}: not a valid lamina model file ({type(e).__name__}: {e})") from e


class _Reader:
    """One pass over an archive: its members, and which of them the header has accounted for."""

    def __init__(self, f):
        try:
            self.zip = zipfile.ZipFile(f)
        except zipfile.BadZipFile:
            raise _FileError("not a zip (.npz) archive, or truncated") from None
        self.members = {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise _FileError(f"unexpected member {info.filename!r} in the archive")
            name = info.filename[: -len(".npy")]
            if name in self.members:
                raise _FileError(f"member {info.filename!r} appears twice in the archive")
            self.members[name] = info
        self.used = set()

    def load(self, with_optimizer):
        with self.zip:
            header = self.header()
            model = self.model(header)
            optimizer = None
            if with_optimizer:
                if "optimizer" not in header:
                    raise _FileError("holds no optimizer state (save it with save(model, path, optimizer=opt))")
                optimizer = self.optimizer(header["optimizer"], model)
            else:
                # Unread optimizer arrays are fine; anything else must be accounted for.
                self.used |= {n for n in self.members if n.startswith(_OPTIM_PREFIX)}
            strays = sorted(set(self.members) - self.used)
            if strays:
                raise _FileError(f"unexpected arrays {strays} in the archive")
            if optimizer is None:
                return model
            if "training" in header:
                _recompile(model, optimizer, header["training"])
            return model, optimizer

    # --- arrays ---------------------------------------------------------------------------------
    def _open(self, name, what):
        """(shape, fortran_order, dtype, stream at the data) of one member, from its .npy header."""
        if name not in self.members:
            raise _FileError(f"{what} is missing from the archive")
        stream = self.zip.open(self.members[name])
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise _FileError(f"{what} has unsupported .npy version {version}")
        except BaseException:
            stream.close()
            raise
        return tuple(shape), fortran, dtype, stream

    def shape(self, name, what):
        shape, _, _, stream = self._open(name, what)
        stream.close()
        return shape

    def array(self, name, what, shape, dtype, kinds="f"):
        """Read one array once its header matches the expected shape and dtype."""
        got_shape, fortran, got_dtype, stream = self._open(name, what)
        with stream:
            if got_dtype.hasobject or got_dtype.kind not in kinds or got_dtype.fields is not None:
                raise _FileError(f"{what} has dtype {got_dtype}, which a lamina file never holds")
            if got_shape != tuple(shape):
                raise _FileError(f"{what} has shape {got_shape}, expected {tuple(shape)}")
            if dtype is not None and got_dtype.newbyteorder("=") != np.dtype(dtype):
                raise _FileError(f"{what} has dtype {got_dtype}, expected {np.dtype(dtype)}")
            nbytes = int(np.prod(got_shape, dtype=np.int64)) * got_dtype.itemsize
            data = stream.read(nbytes)
            if len(data) != nbytes or stream.read(1):
                raise _FileError(f"{what} does not hold the {nbytes} bytes of data its header announces")
        self.used.add(name)
        arr = np.frombuffer(data, dtype=got_dtype).reshape(got_shape, order="F" if fortran else "C")
        return np.array(arr, dtype=got_dtype.newbyteorder("="), order="C")

    # --- parts ------------------------------------------------------------------------------------
    def header(self):
        if CONFIG_KEY not in self.members:
            raise _FileError(f"no {CONFIG_KEY!r} entry: not a file written by lamina.save")
        _, _, dtype, stream = self._open(CONFIG_KEY, CONFIG_KEY)
        stream.close()
        if dtype.kind != "U" or dtype.itemsize // 4 > _MAX_CONFIG_CHARS:
            raise _FileError(f"{CONFIG_KEY!r} is not JSON text of at most {_MAX_CONFIG_CHARS} characters")
        text = self.array(CONFIG_KEY, CONFIG_KEY, (), None, kinds="U")
        try:
            header = json.loads(str(text[()]))
        except (ValueError, RecursionError) as e:
            raise _FileError(f"{CONFIG_KEY!r} is not valid JSON ({e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _FileError(f"{CONFIG_KEY!r} does not describe a lamina model")
        if header.get("version") != VERSION:
            raise _FileError(f"format version {header.get('version')!r} is not supported (this lamina reads {VERSION})")
        for key in ("model", "weights"):
            if not isinstance(header.get(key), dict):
                raise _FileError(f"{CONFIG_KEY!r} has no valid {key!r} entry")
        return header

    def model(self, header):
        config, manifest = header["model"], header["weights"]
        # Sizes come from the .npy headers (no data read): the most parameters a real model needs.
        stored = sum(_count(self.shape(_MODEL_PREFIX + name, f"weight {name!r}")) for name in manifest)
        declared = _declared_parameters(config)
        # Small mismatches are left to the precise per-array checks below; building a model of up
        # to _FREE_PARAMETERS costs nothing worth guarding.
        if declared > max(stored, _FREE_PARAMETERS):
            raise _FileError(f"the architecture asks for {declared} parameters but the file stores {stored} values")
        try:
            model = _registry.layer_from_config(config)
        except (ValueError, TypeError, KeyError) as e:
            raise _FileError(f"the model config cannot be built ({e})") from None
        expected = model.state_dict()
        if list(manifest) != list(expected):
            raise _FileError(f"the file lists weights {list(manifest)}, the architecture has {list(expected)}")
        # Floats, and the one integer a model holds: a batch norm's num_batches_tracked.
        state = {name: self.array(_MODEL_PREFIX + name, f"weight {name!r}", ref.shape, ref.dtype, ref.dtype.kind)
                 for name, ref in expected.items()}
        model.load_state_dict(state)
        return model

    def optimizer(self, entry, model):
        if not (isinstance(entry, dict) and isinstance(entry.get("config"), dict)
                and isinstance(entry.get("scalars"), dict) and isinstance(entry.get("buffers"), dict)):
            raise _FileError("the optimizer entry is malformed")
        state = {}
        for key, value in entry["scalars"].items():
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise _FileError(f"optimizer scalar {key!r} holds {type(value).__name__}, not a number")
            state[key] = value
        try:
            optimizer = _registry.optimizer_from_config(entry["config"], model.parameters())
            expected = optimizer.state_dict()
        except (ValueError, TypeError, KeyError) as e:
            raise _FileError(f"the optimizer config cannot be built ({e})") from None
        for key, spec in entry["buffers"].items():
            ref = expected.get(key)
            if not isinstance(ref, np.ndarray):
                raise _FileError(f"optimizer buffer {key!r} is not part of {type(optimizer).__name__}'s state")
            if not (isinstance(spec, dict) and spec.get("shape") == list(ref.shape) and spec.get("dtype") == ref.dtype.name):
                raise _FileError(f"optimizer buffer {key!r} is listed as {spec!r}, expected shape {list(ref.shape)}"
                                 f" and dtype {ref.dtype.name}")
            state[key] = self.array(_OPTIM_PREFIX + key, f"optimizer buffer {key!r}", ref.shape, ref.dtype)
        try:
            optimizer.load_state_dict(state)
        except (ValueError, TypeError, KeyError) as e:
            raise _FileError(f"the optimizer state cannot be restored ({e})") from None
        return optimizer


def _count(shape):
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _declared_parameters(config):
    """Parameters an architecture asks for, read from its config without building it.

    A hostile file could declare Linear(10**6, 10**6); load refuses it before allocating. Each
    registered class reads its own config (`config_parameters`); malformed values count 0 here:
    layer_from_config rejects them with a precise message.
    """
    try:
        cls = _registry.layer_class(config.get("class") if isinstance(config, Mapping) else None)
        return cls.config_parameters(config, None)[0]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
        return 0


def _recompile(model, optimizer, training):
    if not (isinstance(training, dict) and isinstance(training.get("loss"), dict)
            and isinstance(training.get("metrics"), list) and all(isinstance(m, str) for m in training["metrics"])):
        raise _FileError("the training entry is malformed")
    loss = training["loss"]
    try:
        loss_fn = loss["name"] if isinstance(loss.get("name"), str) else _registry.loss_from_config(loss.get("config"))
        model.compile(optimizer, loss_fn, training["metrics"])
    except (ValueError, TypeError, KeyError) as e:
        raise _FileError(f"the saved loss or metrics cannot be restored ({e})") from None
