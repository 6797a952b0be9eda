"""The engine's modules import each other without a circle (issue 27): read from the source with ``ast``, nothing
imported. Two graphs:

* every module of ``ensemble/`` with the imports it runs when it is imported (module level, ``if``/``try`` blocks
  included, ``if TYPE_CHECKING:`` blocks not: they never run);
* ``ensemble/consensus`` and ``ensemble/languages`` with every import, those inside functions too: an import put in
  a function to dodge a circle is still a circle between the two layers.

Importing ``a.b.c`` runs ``a.b``'s ``__init__`` first, so that is an arrow too (except into a package the importing
module is itself inside: that one is already being imported).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "ensemble"
ROOT = "ensemble"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, inside_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a module; those in functions (and classes' methods) only if asked."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not inside_functions:
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(*, inside_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the engine's modules it imports (``codeconductor.ensemble.x`` counts as ``ensemble.x``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")), inside_functions=inside_functions):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                base = _resolve(name, is_package, node)
                # ``from pkg import sub`` imports the submodule; ``from pkg import name`` only pkg.
                wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in (w.removeprefix("codeconductor.") for w in wanted):
                if target not in modules:
                    continue
                targets.add(target)
                own = name if is_package else name.rpartition(".")[0]
                parts = target.split(".")
                for depth in range(2, len(parts)):
                    parent = ".".join(parts[:depth])
                    if not (own == parent or own.startswith(parent + ".")):
                        targets.add(parent)
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_real_imports() -> None:
    # The check must read what it claims to: known arrows are there.
    graph = import_graph()
    assert "ensemble.languages" in graph["ensemble.consensus"]
    assert "ensemble.types" in graph["ensemble.consensus"]
    assert "ensemble.consensus.behaviour" in graph["ensemble.verify.observe"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_circle_among_the_engines_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_circle_between_consensus_and_languages_even_through_function_imports() -> None:
    layers = ("ensemble.consensus", "ensemble.languages")
    graph = import_graph(inside_functions=True)
    inner = {
        name: {t for t in targets if t.startswith(layers)} for name, targets in graph.items() if name.startswith(layers)
    }
    assert cycles(inner) == []
    # The language layer is below the consensus: it never reaches up into it.
    upward = sorted(
        f"{n} -> {t}" for n, ts in inner.items() for t in ts if n.startswith(layers[1]) and t.startswith(layers[0])
    )
    assert upward == []


_LANGUAGE_MODULES = frozenset({"python", "javascript", "go", "rust", "java", "c"})


def _names_a_language(node: ast.ImportFrom) -> bool:
    parts = (node.module or "").split(".")
    if "languages" not in parts:
        return False
    below = parts[parts.index("languages") + 1 :]
    names = {a.name for a in node.names}
    return bool(below and below[0] in _LANGUAGE_MODULES) or bool(names & (_LANGUAGE_MODULES | {"is_python", "Python"}))


def test_the_consensus_asks_the_language_never_which_language_it_is() -> None:
    # Python's rules live in ensemble/languages/python; the consensus only talks to the Language interface.
    named = [
        f"{path.name}: {ast.unparse(node)}"
        for path in sorted((ENGINE / "consensus").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and _names_a_language(node)
    ]
    assert named == []
    probe = ast.parse("from ..languages.python.docs import docstring_of\nfrom ..languages import is_python")
    assert all(_names_a_language(n) for n in probe.body if isinstance(n, ast.ImportFrom))
