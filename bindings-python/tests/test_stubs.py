"""The shipped .pyi stub matches the native module: same public names, same methods, and the
same parameter names (from the signatures pyo3 generates)."""

from __future__ import annotations

import ast
import inspect
import pathlib

import synapsor_runner
from synapsor_runner import _native

STUB = pathlib.Path(synapsor_runner.__file__).with_name("_native.pyi")


def stub_tree():
    tree = ast.parse(STUB.read_text())
    classes, names = {}, set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            classes[node.name] = {
                f.name: [a.arg for a in f.args.args + f.args.kwonlyargs if a.arg != "self"]
                for f in node.body if isinstance(f, ast.FunctionDef)
            }
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names, classes


def test_stub_declares_exactly_the_module_public_names():
    names, _ = stub_tree()
    public = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    assert names == public


def test_stub_methods_and_parameters_match_the_native_classes():
    _, classes = stub_tree()
    for cls_name in ("NativeRunner", "Transaction", "SyncTransaction"):
        cls = getattr(_native, cls_name)
        native_methods = {n for n in dir(cls) if not n.startswith("_")}
        assert set(classes[cls_name]) == native_methods, cls_name
        for name, params in classes[cls_name].items():
            member = getattr(cls, name)
            if isinstance(member, property) or not callable(member):
                continue
            sig = inspect.signature(member)
            native_params = [p for p in sig.parameters if p not in ("self", "$self")]
            assert native_params == params, (cls_name, name, native_params, params)


def test_package_is_typed_and_exports_the_error_tree():
    assert STUB.with_name("py.typed").exists()
    for name in ("ConfigError", "PolicyError", "NotFoundError", "ConflictError", "ApprovalError",
                 "ExecutorError", "UnavailableError", "RuntimeForkedError"):
        cls = getattr(synapsor_runner, name)
        assert issubclass(cls, synapsor_runner.SynapsorError)
        assert cls.__module__ == "synapsor_runner"


def test_executors_and_the_fastapi_example_type_check_under_mypy_strict():
    """The executor job, its request and change set, and the receipt are typed: a consumer and
    the FastAPI example pass ``mypy --strict`` with no casts, and misuse is caught."""
    import subprocess
    import sys

    here = pathlib.Path(__file__).resolve().parent
    app = here.parent.parent / "examples" / "fastapi-billing" / "app.py"
    for target in (here / "typing" / "consumer.py", app):
        out = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(target)],
            capture_output=True, text=True, cwd=target.parent,
        )
        assert out.returncode == 0, f"{target.name}:\n{out.stdout}{out.stderr}"
