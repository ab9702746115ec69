"""The import order of DESIGN.md holds: the import-linter contracts in pyproject.toml are kept by
the installed package, an upward import added to a copy of it breaks them, and no module hides an
import of lamina inside a function (the way a circle of imports is usually held together).
"""
import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import lamina

pytest.importorskip("importlinter")

PACKAGE = pathlib.Path(lamina.__file__).parent
CONFIG = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"


def lint(package_parent):
    """Run lint-imports on the `lamina` package found in `package_parent`; (exit code, output).

    python -S leaves out site's .pth files (an editable install would otherwise win over
    PYTHONPATH), so the linter's own location is passed explicitly.
    """
    import grimp
    import importlinter

    paths = [str(package_parent)]
    paths += sorted({str(pathlib.Path(m.__file__).parent.parent) for m in (importlinter, grimp)})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(CONFIG)], cwd=package_parent, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def copy_of_package(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "lamina", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return tmp_path / "lamina"


def test_contracts_are_kept(tmp_path):
    copy_of_package(tmp_path)
    code, out = lint(tmp_path)
    assert code == 0, out
    assert "4 kept, 0 broken" in out, out


@pytest.mark.parametrize("module, line", [
    ("layers/dense.py", "from .. import sequential"),       # a layer importing its container
    ("ops/gemm.py", "from ..layers import dense"),            # a kernel wrapper importing a layer
    ("layers/activations.py", "from . import dropout_copy"),  # a family importing a sibling family
])
def test_an_upward_or_sideways_import_breaks_a_contract(tmp_path, module, line):
    package = copy_of_package(tmp_path)
    if "dropout_copy" in line:
        shutil.copy(package / "layers" / "regularization.py", package / "layers" / "dropout_copy.py")
        line = "from . import regularization"
    with open(package / module, "a") as f:
        f.write(f"\n{line}  # added by the test\n")
    code, out = lint(tmp_path)
    assert code != 0 and "BROKEN" in out, f"adding {line!r} to {module} broke no contract:\n{out}"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE), ast.parse(path.read_text(), filename=str(path))


def test_no_import_of_lamina_hides_inside_a_function():
    hidden = []
    for rel, tree in _modules():
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                own = (isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("lamina"))
                       or isinstance(node, ast.Import) and any(a.name.startswith("lamina") for a in node.names))
                if own:
                    hidden.append(f"{rel}:{node.lineno} in {func.name}()")
    assert not hidden, "imports of lamina inside functions: " + ", ".join(hidden)


def test_modules_import_submodules_not_the_package_root():
    # `from .. import X` must name a module (which the contracts then check), never a name the
    # package __init__ re-exports: that would route around the contracts.
    wrong = []
    for rel, tree in _modules():
        here = PACKAGE.joinpath(*rel.parts[:-1])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module is None:
                base = here
                for _ in range(node.level - 1):
                    base = base.parent
                for alias in node.names:
                    exists = (base / f"{alias.name}.py").exists() or (base / alias.name).is_dir()
                    if not exists and alias.name != "_native":
                        wrong.append(f"{rel}:{node.lineno} imports {alias.name!r} from the package root")
            if isinstance(node, ast.Import) and any(a.name == "lamina" for a in node.names) \
                    and rel.parts[0] != "examples":  # the examples are user code, on top of everything
                wrong.append(f"{rel}:{node.lineno} imports the lamina package itself")
    assert not wrong, "; ".join(wrong)
