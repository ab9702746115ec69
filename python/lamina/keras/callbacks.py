"""`keras.callbacks`: the callbacks `fit` calls, with Keras's hook names."""
from ..training import Callback, EarlyStopping, History, LambdaCallback

__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback"]
