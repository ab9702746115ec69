"""A count of the changes that can leave a compiled model's native plan (see _plan.py) pointing at
the wrong arrays, layers, loss or optimizer: a Parameter's `data` or `grad` rebound, a layer
appended to a Sequential, a model compiled, the fused path switched on or off. A plan remembers the
count it was built at, so the check before every training step compares two integers (comparing
the layers, loss and optimizer instead cost 0.1 us of a 2.1 us step). In-place updates of the
arrays change nothing and count nothing.
"""

count = 0


def happened():
    """Record a change: every plan built before it is rebuilt before its next use."""
    global count
    count += 1
