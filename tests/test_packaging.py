"""What the installed distribution carries besides code: its license (metadata and text)."""
import importlib.metadata


def test_the_distribution_declares_the_mit_license_and_ships_its_text():
    dist = importlib.metadata.distribution("lamina")
    assert dist.metadata["License-Expression"] == "MIT", dict(dist.metadata)
    text = dist.read_text("licenses/LICENSE")
    assert text is not None, [str(f) for f in dist.files or []]
    assert text.startswith("MIT License") and "Copyright (c) 2026 the lamina authors" in text


def test_the_package_is_marked_typed_and_ships_the_native_module_stub():
    import pathlib

    import lamina

    package = pathlib.Path(lamina.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()


def test_the_native_stub_declares_every_function_and_plan_member():
    import ast
    import pathlib

    import lamina
    from lamina import _native

    stub = ast.parse((pathlib.Path(lamina.__file__).parent / "_native.pyi").read_text())
    functions = {node.name for node in stub.body if isinstance(node, ast.FunctionDef)}
    plan = next(node for node in stub.body if isinstance(node, ast.ClassDef) and node.name == "Plan")
    plan_members = {node.name for node in plan.body if isinstance(node, ast.FunctionDef)} - {"__init__"}
    native = {name for name in dir(_native) if not name.startswith("_") and callable(getattr(_native, name))}
    assert functions | {"Plan"} == native, (sorted(native - functions - {"Plan"}), sorted(functions - native))
    assert plan_members == {name for name in dir(_native.Plan) if not name.startswith("_")}
