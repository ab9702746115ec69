"""The three seed examples run as scripts: exit status 0, the parameter counts and summary totals of
the foundation networks, and a loss that goes down after their one SGD step.
"""

import functools
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@functools.lru_cache(maxsize=None)  # each script runs once per session
def run_example(name):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stderr}"
    assert proc.stderr == "", f"{name} wrote to stderr:\n{proc.stderr}"
    return proc.stdout


def losses(out, name):
    match = re.search(r"before the step (\d+\.\d+), after (\d+\.\d+)", out)
    assert match, f"{name}: no 'before the step ..., after ...' line in:\n{out}"
    return float(match.group(1)), float(match.group(2))


@pytest.mark.parametrize("name, total, rows", [
    ("keras_style.py", "124", ["0 (Dense)", "1 (Dense)", "2 (Dense)"]),
    ("pytorch_style.py", "31,021", ["0 (Linear)", "1 (ReLU)", "18 (Linear)"]),
    ("numpy_by_hand.py", "67", ["0 (Linear)", "1 (ReLU)", "2 (Linear)", "3 (ReLU)"]),
])
def test_example_runs_and_reports(name, total, rows):
    out = run_example(name)
    lines = out.splitlines()
    assert f"Total params: {total}" in lines, f"{name}: 'Total params: {total}' missing from:\n{out}"
    for row in rows:
        assert any(line.startswith(row) for line in lines), f"{name}: summary row {row!r} missing from:\n{out}"
    before, after = losses(out, name)
    assert after < before, f"{name}: loss went from {before} to {after} after one SGD step"


def test_numpy_by_hand_agrees_with_sequential():
    out = run_example("numpy_by_hand.py")
    assert "parameters: 67 (4*8 + 8 + 8*3 + 3)" in out, out
    assert "Sequential gives the same y: True" in out, out
