"""The layer rules of hook/, as each package's docstring states them ("May import: ..."):
imports run downward only, web and worker never import each other, and no module imports
itself round a cycle. Plus what the light modules promise: no model runtime behind them."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hook.cli.argv import gunicorn_argv, worker_argv
from tests.factories import ROOT

HOOK = ROOT / "hook"
PACKAGES = sorted(p.parent.name for p in HOOK.glob("*/__init__.py"))
EDGES = {"hook.wsgi", "hook.__main__"}  # where settings are read and everything composed
BOTTOM = "bottom"  # hook/*.py: errors, task records, logs, retry, the wake-up ring


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(HOOK.rglob("*.py"))}


def layer(module: str) -> str:
    """The package a module belongs to, BOTTOM for hook's top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else BOTTOM


def imports_of(module: str) -> Iterator[str]:
    """Every hook module `module` imports, at the top or inside a function, by its full name."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        yield from (name for name in names if name in MODULES and name != module)


def allowed(package: str) -> set[str]:
    """The packages `package` may import, from the "May import:" line of its docstring."""
    doc = ast.get_docstring(ast.parse((HOOK / package / "__init__.py").read_text())) or ""
    match = re.search(r"^May import: (.*?)(?:\n\n|\Z)", doc, re.M | re.S)
    assert match, f"hook/{package}/__init__.py says nothing of what it may import"
    return {word for word in re.findall(r"[a-z]+", match.group(1)) if word in PACKAGES}


def test_every_package_says_what_it_owns_and_what_it_may_import() -> None:
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((HOOK / package / "__init__.py").read_text())) or ""
        assert len(doc.split("\n\n")[0]) > 40, f"hook/{package} does not say what it owns"
        allowed(package)


def test_imports_run_downward_only() -> None:
    wrong = []
    for module in MODULES:
        if module in EDGES:
            continue
        own = layer(module)
        may = {own, BOTTOM} | (allowed(own) if own != BOTTOM else set())
        wrong += [
            f"{module} -> {target}" for target in imports_of(module) if layer(target) not in may
        ]
    assert wrong == []


@pytest.mark.parametrize(("one", "other"), [("web", "worker"), ("worker", "web")])
def test_web_and_worker_never_import_each_other(one: str, other: str) -> None:
    assert other not in allowed(one)
    crossing = [
        (m, t) for m in MODULES if layer(m) == one for t in imports_of(m) if layer(t) == other
    ]
    assert crossing == []


def test_the_contract_keeps_the_model_runtime_and_the_store_where_they_belong() -> None:
    assert allowed("detect") == set()  # nothing of config, store or callbacks
    assert "store" not in allowed("callbacks")
    assert allowed("store") == set()


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = {module: set(imports_of(module)) for module in MODULES}
    cycles: list[list[str]] = []
    on_path: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in on_path:
            cycles.append([*on_path[on_path.index(module) :], module])
            return
        if module in done:
            return
        on_path.append(module)
        for target in sorted(graph[module]):
            visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "unwanted"),
    [
        ("hook.rules.ruleset", ("onnxruntime", "cv2", "requests", "pymongo")),  # `rules check`
        ("hook.callbacks.labels", ("onnxruntime", "cv2", "requests")),
        ("hook.detect.detection", ("onnxruntime", "cv2", "numpy", "PIL")),
        ("hook.config.settings", ("onnxruntime",)),
        ("hook.web.app", ("onnxruntime", "cv2")),  # the web never loads a model or OpenCV
    ],
)
def test_light_modules_load_no_model_runtime(module: str, unwanted: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {unwanted!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_every_module_imports() -> None:
    for module in MODULES:
        if module not in EDGES:  # hook.wsgi builds the app from the environment
            importlib.import_module(module)


def test_what_the_launcher_names_by_string_exists() -> None:
    """gunicorn is handed hook's entry point, worker class and logger class as strings, which
    no import checks: each must resolve, or `hook run` fails only when it starts."""
    argv = gunicorn_argv("127.0.0.1:0", 1)
    app_module, _, app = argv[argv.index("-m") + 2].partition(":")
    assert importlib.util.find_spec(app_module) is not None
    assert f"\n{app} = " in (HOOK / "wsgi.py").read_text()  # built at import, from the env
    for option in ("--worker-class", "--logger-class"):
        module, _, name = argv[argv.index(option) + 1].rpartition(".")
        assert hasattr(importlib.import_module(module), name), option
    assert Path(worker_argv()[-1]).is_file()
