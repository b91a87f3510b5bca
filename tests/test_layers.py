"""The library's layers import one way: every import inside sierlib (at a module's top or inside a
function) goes to a module of a lower layer or of its own layer, never up, and the imports form
no cycle. A function-local import is only for an optional or heavy dependency, with a comment on
its line saying why. The README's "Architecture" section draws the same layers."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sierlib"

# The one list of the layers, ground first; README's "Architecture" shows it.
LAYERS = {
    "ground": ["paths", "paper", "registry"],
    "configuration": ["config"],
    "data": ["audio", "download", "folds", "manifest", "corpora", "synthetic", "features", "feature_stats",
             "dataset"],
    "network": ["layers", "encoders", "model", "batching", "train"],
    "one run": ["records", "predict", "speakerinfo", "experiments"],
    "analysis": ["stats", "classical", "results", "recipe", "recipe_tables", "adversary", "crosscorpus", "report",
                 "plots"],
    "launching": ["sweep", "workers", "cluster", "headline", "benchmarks"],
    "command line": ["cli"],
}
LAYER_OF = {m: i for i, mods in enumerate(LAYERS.values()) for m in mods}


def modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}


def sierlib_imports(path: Path):
    """``(imported module, line, inside a function)`` for every import of a sierlib module."""
    tree = ast.parse(path.read_text())
    local = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names = [node.module.split(".")[0]]
            elif node.level == 1:  # from . import a, b
                names = [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "sierlib":
                names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("sierlib.")]
        for name in names:
            if name != "__version__":
                yield name, node.lineno, id(node) in local


def test_every_module_has_a_layer():
    assert sorted(modules()) == sorted(LAYER_OF), "add a new module to LAYERS (and to the README's Architecture)"


def test_no_import_goes_up_a_layer_or_hides_in_a_function():
    problems = []
    for name, path in modules().items():
        for target, line, in_function in sierlib_imports(path):
            if in_function:
                problems.append(f"sierlib/{name}.py:{line} imports {target} inside a function: import it at the top")
            elif LAYER_OF[target] > LAYER_OF[name]:
                up = list(LAYERS)[LAYER_OF[target]]
                problems.append(f"sierlib/{name}.py:{line} imports {target} ({up} layer), above its own "
                                f"({list(LAYERS)[LAYER_OF[name]]})")
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    graph = {name: {t for t, _, _ in sierlib_imports(path)} for name, path in modules().items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_function_local_imports_say_why():
    """Only an optional or heavy third-party dependency is imported inside a function, with a
    comment on its line (or on the line above) saying why."""
    problems = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                    if "#" not in here and not above.startswith("#"):
                        problems.append(f"sierlib/{name}.py:{node.lineno}: {here.strip()}")
    assert not problems, "function-local imports without a reason:\n" + "\n".join(problems)


def test_the_configuration_imports_neither_torch_nor_a_corpus():
    imported = set()
    for node in ast.walk(ast.parse((PACKAGE / "config.py").read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0] if node.level == 0 else "." + (node.module or ""))
    assert "torch" not in imported and not imported & {".corpora", ".manifest", ".features", ".model", ".encoders"}
    assert set(LAYERS["ground"]) >= {m.lstrip(".") for m in imported if m.startswith(".")}


def test_readme_draws_the_same_layers():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture"):]
    section = section[:section.index("\n## ", 4)]
    for layer, mods in LAYERS.items():
        line = next((ln for ln in section.splitlines() if re.match(rf"\W*\d?\.? ?\**{re.escape(layer)}\b", ln, re.I)),
                    None)
        assert line is not None, f"README Architecture has no line for the {layer} layer"
        for m in mods:
            assert re.search(rf"\b{m}\b", line), f"README Architecture: {m} missing from the {layer} line"


def test_no_module_is_long_without_saying_why():
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 430:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "longer than" in doc, f"sierlib/{name}.py has {len(text.splitlines())} lines: split it or say why"


def test_the_package_docstring_names_the_same_modules():
    import sierlib

    named = set(re.findall(r"``([a-z_]+)``", sierlib.__doc__)) - {"sier"}  # modules, not classes or the command
    assert named == set(LAYER_OF), f"sierlib/__init__.py: add {sorted(set(LAYER_OF) - named)}, drop {sorted(named - set(LAYER_OF))}"
