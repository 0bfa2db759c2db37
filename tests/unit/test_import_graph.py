"""No import circles in minikp/: the graph of module imports, read from the source (every
import statement, also those inside functions), has no cycle. A circle means two modules
that cannot be understood, tested or replaced apart; the shared piece belongs elsewhere."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = "minikp"


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """minikp modules `name` imports: `import a.b`, `from a import b` (b a module or a name
    in package a), `from .b import c` (relative)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_and_package_imports():
    g = graph()
    assert "minikp.controller.supervisor" in g["minikp.client"]  # imported inside run_cluster
    assert "minikp.proxy.iptables.names" in g["minikp.proxy.iptables.render"]  # from pkg import mod
    assert "minikp.fabric.cluster" in g["minikp.fabric"]  # a package's __init__


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_minikp_has_no_import_circles():
    assert cycles(graph()) == []


def test_no_module_outside_proxy_reaches_into_a_proxy_mode():
    """Only minikp/proxy/base.py's factory picks a mode: the controller, the CLI and the
    client use the Proxier protocol, never a mode's own modules (iptables/, nftables/...)."""
    modes = {p.name for p in (ROOT / PACKAGE / "proxy").iterdir() if (p / "__init__.py").exists()}
    assert "iptables" in modes
    reaching = {(m, d) for m, deps in graph().items() if not m.startswith("minikp.proxy")
                for d in deps if d.split(".")[:3] in [["minikp", "proxy", mode] for mode in modes]}
    assert reaching == set()
