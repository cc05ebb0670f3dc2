"""The modules of services/pretrain import without a circle, whichever of them comes first.

Two checks. The static one reads every import statement of the package, module level and inside
functions alike, and looks for a circle among its modules (a package's `__init__` counts as the
package; the implicit import of a parent package does not). The runtime one imports each module
first in one fresh interpreter: before each import it drops every `services` module already
loaded, so the module meets none of its siblings initialised, as in a new process; third-party
modules (torch, timm) stay loaded, which keeps it to one interpreter start.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

from shared.specs.pretrain import Method

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "services" / "pretrain"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """The package's modules that `name` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found & MODULES.keys()


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of `graph` as a path that ends where it starts, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_find_circle_reports_a_circle_and_passes_a_tree():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_static_import_graph_has_no_circle():
    graph = {name: imported_modules(name) - {name} for name in MODULES}
    assert graph["services.pretrain.methods"] >= {f"services.pretrain.methods.{m}"
                                                  for m in ("dino", "contrastive", "supervised")}
    assert find_circle(graph) is None


def test_the_method_base_and_registry_import_no_method():
    methods = {f"services.pretrain.methods.{m}" for m in ("dino", "contrastive", "supervised")}
    for name in ("services.pretrain.methods.base", "services.pretrain.methods.method_registry"):
        assert not imported_modules(name) & (methods | {"services.pretrain.methods"}), name


FIRST_IMPORT = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m == "services" or m.startswith("services.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        registry = sys.modules.get("services.pretrain.methods.method_registry")
        if registry is not None and sorted(registry.method_names()) != json.loads(sys.argv[1]):
            failures[name] = f"registry holds only {registry.method_names()}"
    except Exception:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    expected = json.dumps(sorted(get_args(Method)))
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORT, expected, *MODULES], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.splitlines()[-1])
    assert not failures, "\n".join(f"{name} imported first: {error}" for name, error in failures.items())
