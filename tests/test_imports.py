"""The package's import structure: no import cycle between modules, no private name imported
across modules. Read from the source with ``ast``: nothing is imported.

Rules, as the walker applies them:

* every ``import`` and ``from ... import`` counts, at module level or inside a function or class,
  absolute (``oncolab.x``) or relative (``.x``, ``..x``); only imports of the package's own
  modules are kept;
* an import points at the most specific module it names: ``from .a import f`` at module ``a``,
  ``from . import a`` (``a`` a module) at module ``a``, ``from . import f`` (``f`` defined in the
  package's ``__init__``) at the package. Importing ``pkg.sub.x`` also runs ``pkg/__init__``
  and ``pkg/sub/__init__``, but that is Python's doing, not an edge: a package's ``__init__``
  may import its own submodules;
* a cycle is any loop of such edges (``a -> b -> a``), a submodule importing from its own
  package's ``__init__`` included (the ``__init__`` imports the submodule, which needs the
  ``__init__`` half-run);
* a private name is one with a leading underscore that is not a dunder. ``from m import _x``
  is allowed only inside ``m`` itself; a private module (``pkg/_helpers.py``) may be imported
  only from inside its package (so its package's ``__init__`` may re-export its public names).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# the walker
# --------------------------------------------------------------------------------------------
@dataclass
class ImportGraph:
    """Modules of one package, the imports between them, and the private imports found."""

    files: dict[str, Path]                                                   # module -> file
    edges: dict[str, dict[str, int]] = field(default_factory=dict)           # module -> {target: line}
    private: list[str] = field(default_factory=list)                         # "file:line: message"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules(package_dir: Path, package: str) -> dict[str, Path]:
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join([package, *parts])] = path
    return files


def _is_package(module: str, files: dict[str, Path]) -> bool:
    return files[module].name == "__init__.py"


def _owner_of_private_module(module: str) -> str | None:
    """The package a private module belongs to (``a.b._c.d`` -> ``a.b``); None if none is private."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:i])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _resolve(importer: str, node: ast.ImportFrom, files: dict[str, Path]) -> str | None:
    """The absolute module name of ``from <...> import``; None when it climbs out of the package."""
    if node.level == 0:
        return node.module
    base = importer.split(".") if _is_package(importer, files) else importer.split(".")[:-1]
    up = node.level - 1
    if up >= len(base):
        return None
    base = base[:len(base) - up]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, files: dict[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is one of the package's modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in files:
            return candidate
    return None


def import_graph(package_dir: Path, package: str | None = None) -> ImportGraph:
    """Walk every module of the package in ``package_dir``; build its import graph."""
    package = package or package_dir.name
    files = _modules(package_dir, package)
    graph = ImportGraph(files, {m: {} for m in files})

    def where(module: str, node: ast.AST) -> str:
        return f"{files[module].relative_to(package_dir.parent)}:{node.lineno}"

    def add(importer: str, target: str, node: ast.AST) -> None:
        if target != importer:
            graph.edges[importer].setdefault(target, node.lineno)
        owner = _owner_of_private_module(target)
        message = f"{where(importer, node)}: {importer} imports {target}, a private module of {owner}"
        if owner is not None and not _inside(importer, owner) and message not in graph.private:
            graph.private.append(message)

    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _known(alias.name, files)
                    if target is not None:
                        add(module, target, node)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node, files)
                if source is None or _known(source, files) != source:
                    continue          # another library (or a module that does not exist)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in files:                 # from pkg import module
                        add(module, submodule, node)
                        continue
                    add(module, source, node)
                    if _is_private(alias.name) and source != module:
                        graph.private.append(f"{where(module, node)}: {module} imports the private name "
                                             f"{alias.name!r} from {source}")
    return graph


def find_cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """One closed path (first node repeated last) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:                     # Tarjan, iterative over each node's edges
        work = [(v, iter(sorted(edges.get(v, {}))))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        group.append(w)
                        if w == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)

    cycles = []
    for group in sorted(groups):
        members = set(group)
        start = group[0]
        # shortest way round from start back to start, inside the group
        paths = {w: [start, w] for w in sorted(edges[start]) if w in members}
        frontier = list(paths)
        while start not in paths:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w in members and w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
            frontier = nxt
        cycles.append(paths[start])
    return cycles


def describe_cycle(graph: ImportGraph, cycle: list[str], package_dir: Path) -> str:
    steps = [f"{a} -> {b} ({graph.files[a].relative_to(package_dir.parent)}:{graph.edges[a][b]})"
             for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


# --------------------------------------------------------------------------------------------
# the package
# --------------------------------------------------------------------------------------------
def test_no_import_cycle_between_modules():
    graph = import_graph(ROOT / "oncolab")
    cycles = find_cycles(graph.edges)
    assert not cycles, (f"{len(cycles)} import cycle(s) between oncolab modules:\n  "
                        + "\n  ".join(describe_cycle(graph, c, ROOT / "oncolab") for c in cycles))


def test_no_private_name_imported_across_modules():
    graph = import_graph(ROOT / "oncolab")
    assert not graph.private, (f"{len(graph.private)} private import(s) across oncolab modules:\n  "
                               + "\n  ".join(graph.private))


def test_the_package_lists_each_public_submodule_once():
    """``oncolab.<name>`` is imported on first use for every name in ``_SUBMODULES``: the list
    must name exactly the public modules and subpackages below ``oncolab`` (``env`` is imported
    eagerly)."""
    tree = ast.parse((ROOT / "oncolab" / "__init__.py").read_text(encoding="utf-8"))
    listed = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", None) == "_SUBMODULES" for t in node.targets))
    present = {p.stem if p.is_file() else p.name for p in (ROOT / "oncolab").iterdir()
               if (p.suffix == ".py" or (p / "__init__.py").is_file()) and not p.name.startswith("_")}
    assert len(listed) == len(set(listed))
    assert set(listed) == present - {"env"}


# --------------------------------------------------------------------------------------------
# the walker itself, on small packages written for the test
# --------------------------------------------------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files)).split("/")[0]


def test_walker_finds_a_cycle_through_a_function_level_import_and_a_private_import(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "from .a import f\nfrom . import d\n",
        "pkg/a.py": "import os\n\n\ndef f():\n    from .b import g\n    return g()\n\n\ndef _hidden():\n    pass\n",
        "pkg/b.py": "from pkg.a import f\n\n\ndef g():\n    return 1\n",
        "pkg/c.py": "from .a import _hidden, f\n",
        "pkg/d.py": "from pkg.sub._impl import helper\n",
        "pkg/sub/__init__.py": "from ._impl import helper\nfrom .. import c\n",
        "pkg/sub/_impl.py": "from . import _local\n\n\ndef helper():\n    pass\n",
        "pkg/sub/_local.py": "",
    })
    graph = import_graph(pkg)
    assert set(graph.files) == {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.sub", "pkg.sub._impl",
                                "pkg.sub._local"}
    assert graph.edges["pkg.a"] == {"pkg.b": 5}                    # inside a function; os is not ours
    assert graph.edges["pkg"] == {"pkg.a": 1, "pkg.d": 2}          # `from . import d`: the module
    assert graph.edges["pkg.sub"] == {"pkg.sub._impl": 1, "pkg.c": 2}
    assert find_cycles(graph.edges) == [["pkg.a", "pkg.b", "pkg.a"]]
    message = describe_cycle(graph, ["pkg.a", "pkg.b", "pkg.a"], pkg)
    assert "pkg/a.py:5" in message and "pkg/b.py:1" in message
    # c takes a's private function; d reaches into sub's private module; sub's own __init__
    # re-exporting from its private module and _impl importing its sibling are fine
    assert len(graph.private) == 2
    assert graph.private[0].startswith("pkg/c.py:1: pkg.c imports the private name '_hidden' from pkg.a")
    assert graph.private[1].startswith("pkg/d.py:1: pkg.d imports pkg.sub._impl, a private module of pkg.sub")


def test_walker_reports_a_submodule_importing_its_own_package_init(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "from .a import f\nfrom .b import g\n",
        "pkg/a.py": "def f():\n    pass\n",
        "pkg/b.py": "from . import f\n\n\ndef g():\n    return f()\n",
    })
    graph = import_graph(pkg)
    assert graph.edges["pkg.b"] == {"pkg": 1}
    assert find_cycles(graph.edges) == [["pkg", "pkg.b", "pkg"]]
    assert graph.private == []


def test_walker_passes_a_clean_package(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "from . import data, models\n\n__version__ = '1'\n",
        "pkg/data/__init__.py": "from .io import read\n",
        "pkg/data/io.py": "import json\n\n\ndef read(p):\n    return json.loads(p)\n\n\ndef _parse():\n    pass\n",
        "pkg/models/__init__.py": "from .net import Net\n",
        "pkg/models/net.py": ("import pkg.data.io\nfrom ..data import read\nfrom pkg.data.io import __doc__\n\n\n"
                              "class Net:\n    def load(self):\n        from ..data.io import read as r\n"
                              "        return r, _own()\n\n\ndef _own():\n    pass\n"),
    })
    graph = import_graph(pkg)
    assert graph.edges["pkg.models.net"] == {"pkg.data.io": 1, "pkg.data": 2}
    assert graph.edges["pkg"] == {"pkg.data": 1, "pkg.models": 1}
    assert find_cycles(graph.edges) == []
    assert graph.private == []
