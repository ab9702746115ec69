"""README's Python snippets run as written: each ```python block of README.md runs in a fresh
interpreter, in an empty folder (it may write files), with warnings as errors, and must exit 0 with
nothing on stderr. A block that is not meant to run is fenced as ```text, not ```python.
"""
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    if not README.exists():  # the tests run from a copy of tests/ without README beside them
        return []
    text = README.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"^```python\n(.*?)^```$", text,
                                                                                 re.S | re.M)]


def test_readme_has_python_blocks():
    if not README.exists():
        pytest.skip("README.md is not beside tests/")
    assert python_blocks(), "no ```python block found in README.md"


@pytest.mark.parametrize("line, code", python_blocks(), ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_readme_python_block_runs_as_written(line, code, tmp_path):
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", f"README.md, block at line {line}:\n{proc.stderr}"
