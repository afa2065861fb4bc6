"""The package's shape, computed from its imports (imports inside functions count too): no import cycle between
modules or between packages, and every import goes to the importer's own layer or one below it, so that the floors
follow the data (data -> source model -> adaptation -> samples -> metrics -> report) with the verbs on top. The
workflow's rules stay declarative: their helpers are named functions in the rule files' shared modules."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import domainstudio

PACKAGE = Path(domainstudio.__file__).parent
ROOT = Path(__file__).resolve().parents[1]

# The layers, bottom first: each top-level module or package of domainstudio may import only from its own layer or
# below. Within a layer, packages may import each other but not in a loop (test_no_import_cycles_between_packages).
LAYERS = [
    ("foundation: files, devices, manifests, the method registry", {"atomic", "devices", "fingerprint", "train_log", "manifest", "registry"}),
    ("data: the rendered world and image folders", {"data"}),
    ("source models, the relative-distance kernel, the training loop", {"models", "relative_distance", "training"}),
    ("adaptation: diffusion methods and the GAN baselines", {"adapt", "gan"}),
    ("sampling, and text-to-image (adapts and samples a Stable Diffusion pipeline)", {"sampling", "t2i"}),
    ("metrics: scoring images", {"metrics"}),
    ("report: tables, claims, figures", {"report"}),
    ("release builder: quality curves and release folders", {"release"}),
    ("params.yaml's checks and the rules' arguments", {"params"}),
    ("verbs: the domainstudio command", {"commands", "cli"}),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (``from pkg import module`` counts as module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("domainstudio"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = targets - {name}
    return graph


def package_of(module: str) -> str | None:
    """``domainstudio.adapt.losses`` -> ``adapt``; ``domainstudio.cli`` -> ``cli``; the root package -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """top-level package (or module) -> the other top-level packages its modules import."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package_of(module)
        if source is None:
            continue
        packages.setdefault(source, set()).update(t for t in map(package_of, targets) if t not in (None, source))
    return packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v), on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]], layers) -> list[str]:
    """Every import of a module from a layer above its own, as 'importer -> imported (layer -> layer)'."""
    level = {package: i for i, (_, packages) in enumerate(layers) for package in packages}
    found = []
    for module, targets in sorted(graph.items()):
        source = package_of(module)
        for target in sorted(targets):
            if source is not None and package_of(target) is not None and level[package_of(target)] > level[source]:
                found.append(f"{module} -> {target} ({layers[level[source]][0]} -> {layers[level[package_of(target)]][0]})")
    return found


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_layer_check_finds_an_upward_import():
    layers = [("low", {"data"}), ("high", {"commands"})]
    graph = {"domainstudio.data.world": {"domainstudio.commands.data"}, "domainstudio.commands.data": {"domainstudio.data.world"}}
    assert upward_imports(graph, layers) == ["domainstudio.data.world -> domainstudio.commands.data (low -> high)"]
    assert package_graph(graph) == {"data": {"commands"}, "commands": {"data"}}


def test_no_import_cycles_between_modules():
    graph = import_graph()
    assert "domainstudio.metrics.fid" in graph and "domainstudio.cli" in graph
    found = cycles(graph)
    assert not found, "modules importing each other: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_cycles_between_packages():
    found = cycles(package_graph(import_graph()))
    assert not found, "packages importing each other: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_package_is_in_exactly_one_layer():
    named = [package for _, packages in LAYERS for package in packages]
    assert len(named) == len(set(named)), "a package is in two layers"
    assert set(named) == set(package_graph(import_graph())), "LAYERS must name every top-level module and package"


def test_imports_go_down_the_layers():
    found = upward_imports(import_graph(), LAYERS)
    assert not found, "imports from a layer above the importer's:\n" + "\n".join(found)


def test_rules_carry_no_lambdas():
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]
    found = [f"{f.relative_to(ROOT)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1) if re.search(r"\blambda\b", line)]
    assert not found, "lambdas in the workflow (make them named functions in settings.smk): " + ", ".join(found)
