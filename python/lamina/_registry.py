"""Config names -> classes, for layers (and containers), losses and optimizers.

Each class registers itself in the module that defines it (one line per family), so that loading
a saved model (`serialization`) and rebuilding nested containers need no list of classes and no
import of the modules above them. Only registered classes can be built from a file: nothing is
ever looked up by an arbitrary name or evaluated.
"""
from collections.abc import Mapping
from typing import Any

_layers: dict[str, Any] = {}
_losses: dict[str, Any] = {}
_optimizers: dict[str, Any] = {}


def register(*classes, name=None):
    """Register layer or container classes under their class names, or one class under `name`
    (a `from_config` classmethod, when present, builds them; otherwise the config's keys are the
    constructor's arguments)."""
    for cls in classes:
        _layers[name or cls.__name__] = cls


def register_loss(*classes):
    for cls in classes:
        _losses[cls.__name__] = cls


def register_optimizer(*classes):
    for cls in classes:
        _optimizers[cls.__name__] = cls


def layer_from_config(cfg):
    """Build a layer from `get_config()` output; only registered classes are known.

    Raises:
        TypeError: `cfg` is not a mapping.
        ValueError: unknown class or unknown configuration keys (constructors check the values).

    Example:
        >>> layer_from_config({"class": "Linear", "in_features": 3, "out_features": 2})
        Linear(in_features=3, out_features=2, bias=True)
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"layer config must be a mapping, got {type(cfg).__name__}")
    name = cfg.get("class")
    cls = layer_class(name)
    if hasattr(cls, "from_config"):  # containers rebuild their children themselves
        return cls.from_config(cfg)
    kwargs = {k: v for k, v in cfg.items() if k != "class"}
    allowed = (*cls._CONFIG_KEYS, "name")
    unknown = sorted(str(k) for k in kwargs if k not in allowed)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in {name} config; allowed: {list(allowed)}")
    return cls(**kwargs)


def layer_class(name):
    if not isinstance(name, str) or name not in _layers:
        raise ValueError(f"unknown layer class {name!r} in config; known classes: {sorted(_layers)}")
    return _layers[name]


def loss_from_config(cfg):
    """Build a loss from `get_config()` output ({"class": name}) or from its class name.

    Example:
        >>> loss_from_config({"class": "MSELoss"})
        MSELoss()
    """
    name = cfg.get("class") if isinstance(cfg, Mapping) else cfg
    if not isinstance(name, str) or name not in _losses:
        raise ValueError(f"unknown loss {name!r}; known losses: {sorted(_losses)}")
    if isinstance(cfg, Mapping) and set(cfg) - {"class"}:
        raise ValueError(f"unknown keys {sorted(map(str, set(cfg) - {'class'}))} in {name} config")
    return _losses[name]()


def optimizer_from_config(cfg, params):
    """Build an optimizer over `params` from `get_config()` output (registered classes only).

    Example:
        >>> opt = optimizer_from_config({"class": "SGD", "lr": 0.1}, Linear(3, 2).parameters())
        >>> opt.lr
        0.1
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f"optimizer config must be a mapping, got {type(cfg).__name__}")
    name = cfg.get("class")
    if not isinstance(name, str) or name not in _optimizers:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: {sorted(_optimizers)}")
    cls = _optimizers[name]
    kwargs = {k: v for k, v in cfg.items() if k != "class"}
    unknown = sorted(str(k) for k in kwargs if k not in cls._CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in {name} config; allowed: {list(cls._CONFIG_KEYS)}")
    for key in cls._REQUIRED:
        if key not in kwargs:
            raise ValueError(f"{name} config needs {key!r}")
    return cls(params, **kwargs)
