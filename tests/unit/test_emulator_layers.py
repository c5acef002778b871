"""The emulator's import rules, read from its source with ast: layers in one direction, no cycles.

Layers (batch_emulator/README.md, "Map of the code"):
    api      may import service, formula, faults     (the HTTP layer)
    runtime  may import service, formula             (what runs on the nodes)
    faults   may import service                      (fault injection; api uses it)
    service  may import formula                      (state, decisions, the error factory)
    formula  imports nothing of the emulator         (the autoscale formula language)
__main__ (the composition root) may import anything. Every module may import the package root
(batch_emulator/__init__.py: constants only, which must itself import nothing of the emulator).
Outside the emulator, only toolkit.redaction may be imported from this repository.
"""

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "batch_emulator"
ROOT = "root"        # batch_emulator/__init__.py
MAIN = "__main__"    # batch_emulator/__main__.py
ALLOWED = {
    "api": {"api", "service", "formula", "faults", ROOT},
    "runtime": {"runtime", "service", "formula", ROOT},
    "faults": {"faults", "service", ROOT},
    "service": {"service", "formula", ROOT},
    "formula": {"formula"},
    ROOT: set(),
}
ALLOWED_REPOSITORY_IMPORTS = {"toolkit.redaction"}


def modules_of(package_dir):
    """{module name: path} for every .py file of the package in ``package_dir``."""
    base = package_dir.parent
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name, path, known):
    """(line, imported module) for every import in the file, relative ones resolved, nested ones included.

    ``from X import y`` counts as an import of X.y when that is a module of the package, else of X.
    """
    is_package = path.name == "__init__.py"
    package_parts = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package_parts[:len(package_parts) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else base))
    return found


def layer_of(module):
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT
    return MAIN if parts[1] == "__main__" else parts[1]


def repository_module(module):
    """True if ``module`` comes from this repository (a script, toolkit/, tools/), not from a library."""
    top = module.split(".")[0]
    return any(p.exists() for p in (REPO_ROOT / f"{top}.py", REPO_ROOT / top, REPO_ROOT / "tools" / f"{top}.py"))


def graph_and_violations(package_dir):
    """The import graph between the package's modules, and a message for each import against the rules."""
    modules = modules_of(package_dir)
    graph = {name: {} for name in modules}      # module -> {imported module: "path:line"}
    violations = []
    for name, path in modules.items():
        where_base = path.relative_to(package_dir.parent)
        for line, target in imports_of(name, path, modules):
            where = f"{where_base}:{line}"
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                if target not in modules:
                    target = target.rsplit(".", 1)[0]   # `import batch_emulator.x.NAME`: the module x
                graph[name].setdefault(target, where)
                source_layer, target_layer = layer_of(name), layer_of(target)
                if source_layer != MAIN and target_layer not in ALLOWED.get(source_layer, set()):
                    allowed = ", ".join(sorted(ALLOWED.get(source_layer, set()))) or "nothing of the emulator"
                    violations.append(f"{where}: {name} imports {target}, against the layer order "
                                      f"({source_layer} may import: {allowed})")
            elif repository_module(target) and target not in ALLOWED_REPOSITORY_IMPORTS:
                violations.append(f"{where}: {name} imports {target} from the repository "
                                  f"(the emulator may import only {', '.join(sorted(ALLOWED_REPOSITORY_IMPORTS))})")
    return graph, violations


def cycles(graph):
    """Each import cycle once, as a message naming every import in it."""
    found, seen, done = [], set(), set()

    def visit(module, path):
        if module in done:
            return
        if module in path:
            cycle = path[path.index(module):] + [module]
            key = frozenset(cycle)
            if key not in seen:
                seen.add(key)
                steps = [f"{a} imports {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
                found.append("import cycle: " + "; ".join(steps))
            return
        for target in graph.get(module, {}):
            visit(target, path + [module])

    for module in sorted(graph):
        visit(module, [])
        done.add(module)
    return found


def test_the_emulator_imports_follow_the_layer_order():
    _graph, violations = graph_and_violations(REPO_ROOT / PACKAGE)
    assert not violations, "\n".join(violations)


def test_the_emulator_has_no_import_cycle():
    graph, _violations = graph_and_violations(REPO_ROOT / PACKAGE)
    found = cycles(graph)
    assert not found, "\n".join(found)


def test_every_emulator_module_is_in_a_known_layer():
    unknown = [m for m in modules_of(REPO_ROOT / PACKAGE) if layer_of(m) not in ALLOWED and layer_of(m) != MAIN]
    assert not unknown, f"modules outside the layers api/service/runtime/formula/faults: {unknown}"


def _write(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


@pytest.mark.parametrize("source, expected", [
    ("from ..api import wire\n", "batch_emulator/service/state.py:1: batch_emulator.service.state imports "
                                 "batch_emulator.api.wire, against the layer order"),
    ("import batch_emulator.runtime.executor\n", "imports batch_emulator.runtime.executor, against the layer order"),
    ("def f():\n    from batch_emulator.api.wire import iso\n", "state.py:2: batch_emulator.service.state imports "
                                                                  "batch_emulator.api.wire"),
    ("import config_resources\n", "imports config_resources from the repository"),
])
def test_the_checker_names_an_upward_import(tmp_path, source, expected):
    package = _write(tmp_path, {
        "batch_emulator/__init__.py": "", "batch_emulator/__main__.py": "from .api import wire\n",
        "batch_emulator/api/__init__.py": "", "batch_emulator/api/wire.py": "from ..service import state\n",
        "batch_emulator/runtime/__init__.py": "", "batch_emulator/runtime/executor.py": "",
        "batch_emulator/service/__init__.py": "", "batch_emulator/service/state.py": source,
    })
    _graph, violations = graph_and_violations(package)
    assert any(expected in v for v in violations), violations


def test_the_checker_names_every_import_of_a_cycle(tmp_path):
    package = _write(tmp_path, {
        "batch_emulator/__init__.py": "", "batch_emulator/runtime/__init__.py": "",
        "batch_emulator/runtime/executor.py": "from . import taskrun\n",
        "batch_emulator/runtime/taskrun.py": "import os\n\nfrom .executor import ENDED\n",
    })
    graph, violations = graph_and_violations(package)
    assert violations == []
    assert cycles(graph) == ["import cycle: batch_emulator.runtime.executor imports batch_emulator.runtime.taskrun "
                             "(batch_emulator/runtime/executor.py:1); batch_emulator.runtime.taskrun imports "
                             "batch_emulator.runtime.executor (batch_emulator/runtime/taskrun.py:3)"]


def _unannotated(node, where, owner=None):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
            yield from _unannotated(child, where, child.name)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and not child.name.startswith("_"):
            args = child.args.posonlyargs + child.args.args + child.args.kwonlyargs
            if owner is not None and args and args[0].arg in ("self", "cls"):
                args = args[1:]
            args += [a for a in (child.args.vararg, child.args.kwarg) if a is not None]
            if child.returns is None or any(a.annotation is None for a in args):
                yield f"{where}:{child.lineno} {owner + '.' if owner else ''}{child.name}"


def unannotated_public_functions(package_dir):
    """file:line name for each public function or method (no leading underscore, in a public class) that
    lacks a parameter or return annotation; mypy's override for the emulator relies on this."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        found += _unannotated(ast.parse(path.read_text()), path.relative_to(package_dir.parent))
    return found


def test_every_public_emulator_function_is_annotated():
    missing = unannotated_public_functions(REPO_ROOT / PACKAGE)
    assert not missing, "public functions without complete annotations:\n" + "\n".join(missing)


# ---- api/ only parses, calls one service operation and renders (issue 17) ----

# Methods of builtin containers that change them in place.
CONTAINER_MUTATORS = {"append", "extend", "insert", "pop", "popitem", "remove", "clear", "update", "setdefault",
                      "add", "discard", "sort", "reverse"}


def _is_self(node):
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _self_changes(method, mutating):
    """True if ``method`` stores to an attribute of self, changes a container held by self, or calls a method
    of self already known to change it."""
    for node in ast.walk(method):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else \
            node.targets if isinstance(node, ast.Delete) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and _is_self(leaf.value) and isinstance(leaf.ctx, (ast.Store,
                                                                                                         ast.Del)):
                    return True
                if isinstance(leaf, ast.Subscript) and isinstance(leaf.value, ast.Attribute) and \
                        _is_self(leaf.value.value):
                    return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if _is_self(owner) and node.func.attr in mutating:
                return True
            if node.func.attr in CONTAINER_MUTATORS and isinstance(owner, ast.Attribute) and _is_self(owner.value):
                return True
    return False


def service_vocabulary(package_dir):
    """(field names, mutating method names) of the classes in service/: the attributes api/ must not assign
    and the methods it must not call."""
    fields, methods = set(), {}
    for path in sorted((package_dir / "service").rglob("*.py")):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for item in cls.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    fields.add(item.target.id)
                elif isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    methods[item.name] = item
    mutating = set()
    while True:   # a method that calls a mutating method of self mutates too
        more = {name for name, m in methods.items() if name not in mutating and _self_changes(m, mutating)}
        if not more:
            return fields, mutating
        mutating |= more


def _attribute_chain_field(node, fields):
    """The service field ``node`` (an assignment target) changes: x.F, x.F[...], x.F.y[...]; None if none."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute) and not _is_self(node.value):
        return node.attr if node.attr in fields else _attribute_chain_field(node.value, fields)
    return None


def api_layer_violations(package_dir):
    """file:line and what breaks the rule, for each function of api/ that takes the account lock, wakes the
    scheduler, assigns an attribute of a service object or calls a method that changes one."""
    fields, mutating = service_vocabulary(package_dir)
    found = []
    for path in sorted((package_dir / "api").rglob("*.py")):
        where = path.relative_to(package_dir.parent)
        tree = ast.parse(path.read_text())
        for node in sorted((n for n in ast.walk(tree) if hasattr(n, "lineno")), key=lambda n: n.lineno):
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if "lock" in ast.unparse(item.context_expr) or "changed" in ast.unparse(item.context_expr):
                        found.append(f"{where}:{node.lineno} takes the account lock (service operations do)")
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                for leaf in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    field = _attribute_chain_field(leaf, fields)
                    if field is not None:
                        found.append(f"{where}:{node.lineno} changes {ast.unparse(leaf)} of a service object "
                                     f"(field {field})")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name, owner = node.func.attr, node.func.value
                if name == "wake":
                    found.append(f"{where}:{node.lineno} wakes the scheduler (service operations do)")
                elif name in mutating and not _is_self(owner):
                    found.append(f"{where}:{node.lineno} calls {ast.unparse(node.func)}, which changes a service "
                                 "object")
                elif name in CONTAINER_MUTATORS and _attribute_chain_field(owner, fields) is not None:
                    found.append(f"{where}:{node.lineno} calls {ast.unparse(node.func)}, which changes a service "
                                 "object")
    return found


def test_the_http_layer_leaves_every_change_to_the_service():
    violations = api_layer_violations(REPO_ROOT / PACKAGE)
    assert not violations, "\n".join(violations)


def test_the_api_checker_names_each_kind_of_change(tmp_path):
    package = _write(tmp_path, {
        "batch_emulator/service/state.py": (
            "class Pool:\n    spec: dict\n    target: int\n\n"
            "    def touch(self):\n        self.etag = 1\n\n"
            "    def transition(self, state):\n        self.touch()\n\n"
            "    def wake(self):\n        pass\n\n"
            "    def describe(self):\n        return self.spec\n"),
        "batch_emulator/api/pools.py": (
            "def handler(server, pool, response):\n"
            "    with server.account.lock:\n"
            "        pool.target = 3\n"
            "    pool.spec['x'] = 1\n"
            "    del pool.spec['y']\n"
            "    pool.spec.pop('z')\n"
            "    pool.transition('deleting')\n"
            "    server.account.wake()\n"
            "    response.headers['ETag'] = pool.describe()\n"),
    })
    assert api_layer_violations(package) == [
        "batch_emulator/api/pools.py:2 takes the account lock (service operations do)",
        "batch_emulator/api/pools.py:3 changes pool.target of a service object (field target)",
        "batch_emulator/api/pools.py:4 changes pool.spec['x'] of a service object (field spec)",
        "batch_emulator/api/pools.py:5 changes pool.spec['y'] of a service object (field spec)",
        "batch_emulator/api/pools.py:6 calls pool.spec.pop, which changes a service object",
        "batch_emulator/api/pools.py:7 calls pool.transition, which changes a service object",
        "batch_emulator/api/pools.py:8 wakes the scheduler (service operations do)",
    ]
