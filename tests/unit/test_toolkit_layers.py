"""The toolkit's import rules, read from its source with ast: layers in one direction, no cycles.

Layers, from the bottom:
    base      toolkit (the package), toolkit.errors, toolkit.redaction, toolkit.envfile, toolkit.values,
              toolkit.commands: import nothing of the repository
    settings  toolkit.variables (the table) may import base; toolkit.settings (the reader) base and the table;
              toolkit.checked the settings layer and base
    leaves    every other toolkit module (batch, jobs, progress, status, storage, tail, ...) may import any
              toolkit module but toolkit.cli: ToolkitError and ExitStatus come from toolkit.errors
    cli       toolkit.cli may import any toolkit module
    scripts   create_pool_job.py, send_task.py, check_task.py, delete_pool_job.py may import the toolkit
config_resources.py (the tutorial's names) may import only the settings layer and toolkit.commands, and
nothing of the toolkit or the scripts imports it (it is the tutorial's entry, not a dependency). Nothing
here imports the emulator, tools/ or tests/. The checks count nested imports and TYPE_CHECKING ones too.
"""

import pytest

from tests.unit.test_emulator_layers import REPO_ROOT, cycles, imports_of, modules_of, repository_module

SCRIPTS = ("create_pool_job", "send_task", "check_task", "delete_pool_job")
BASE = {"toolkit", "toolkit.errors", "toolkit.redaction", "toolkit.envfile", "toolkit.values", "toolkit.commands"}
SETTINGS = {"toolkit.variables", "toolkit.settings", "toolkit.checked"}
CONFIG = "config_resources"


def allowed_imports(module, toolkit_modules):
    """The repository modules `module` may import."""
    if module in BASE:
        return set()
    if module == "toolkit.variables":
        return BASE
    if module == "toolkit.settings":
        return BASE | {"toolkit.variables"}
    if module == "toolkit.checked":
        return BASE | {"toolkit.variables", "toolkit.settings"}
    if module == CONFIG:
        return SETTINGS | {"toolkit.commands"}
    if module == "toolkit.cli" or module in SCRIPTS:
        return set(toolkit_modules) - {module}
    return set(toolkit_modules) - {module, "toolkit.cli"}   # a leaf module


def toolkit_sources(root):
    """{module name: path} of the toolkit package, config_resources.py and the scripts under `root`."""
    found = modules_of(root / "toolkit")
    for name in (CONFIG, *SCRIPTS):
        if (root / f"{name}.py").exists():
            found[name] = root / f"{name}.py"
    return found


def graph_and_violations(root, is_repository=repository_module):
    """The import graph between these modules, and a message for each import against the rules."""
    modules = toolkit_sources(root)
    toolkit_modules = {name for name in modules if name == "toolkit" or name.startswith("toolkit.")}
    graph = {name: {} for name in modules}
    violations = []
    for name, path in modules.items():
        for line, target in imports_of(name, path, modules):
            if target not in modules and target.rsplit(".", 1)[0] in modules:
                target = target.rsplit(".", 1)[0]      # `import toolkit.x.NAME`: the module toolkit.x
            where = f"{path.relative_to(root)}:{line}"
            if target in modules:
                graph[name].setdefault(target, where)
                allowed = allowed_imports(name, toolkit_modules)
                if target not in allowed:
                    names = ", ".join(sorted(allowed)) or "nothing of the repository"
                    violations.append(f"{where}: {name} imports {target}, against the layer order "
                                      f"({name} may import: {names})")
            elif is_repository(target):
                violations.append(f"{where}: {name} imports {target}, which is not the toolkit's")
    return graph, violations


def test_the_toolkit_imports_follow_the_layer_order():
    _graph, violations = graph_and_violations(REPO_ROOT)
    assert not violations, "\n".join(violations)


def test_the_toolkit_and_config_resources_have_no_import_cycle():
    graph, _violations = graph_and_violations(REPO_ROOT)
    found = cycles(graph)
    assert not found, "\n".join(found)


def test_every_toolkit_module_is_in_a_layer():
    # A new module is a leaf unless it says otherwise; this catches a layer set naming a module that is gone.
    modules = toolkit_sources(REPO_ROOT)
    assert BASE | SETTINGS <= set(modules), sorted(BASE | SETTINGS - set(modules))


def _write(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("relative, source, expected", [
    ("toolkit/jobs.py", "from toolkit.cli import ToolkitError\n",
     "toolkit/jobs.py:1: toolkit.jobs imports toolkit.cli, against the layer order"),
    ("toolkit/settings.py", "def f():\n    from toolkit.batch import error_code\n",
     "toolkit/settings.py:2: toolkit.settings imports toolkit.batch, against the layer order"),
    ("toolkit/batch.py", "from config_resources import BatchAccess\n",
     "toolkit/batch.py:1: toolkit.batch imports config_resources, against the layer order"),
    ("toolkit/errors.py", "import toolkit.redaction\n",
     "toolkit.errors imports toolkit.redaction, against the layer order (toolkit.errors may import: nothing"),
    ("toolkit/jobs.py", "import send_task\n", "toolkit.jobs imports send_task, against the layer order"),
    ("toolkit/jobs.py", "from batch_emulator.service import errors\n",
     "toolkit.jobs imports batch_emulator.service, which is not the toolkit's"),
])
def test_the_checker_names_an_import_against_the_layers(tmp_path, relative, source, expected):
    root = _write(tmp_path, {
        "toolkit/__init__.py": "", "toolkit/errors.py": "", "toolkit/redaction.py": "", "toolkit/settings.py": "",
        "toolkit/cli.py": "from toolkit.jobs import x\n", "toolkit/batch.py": "", "toolkit/jobs.py": "",
        "config_resources.py": "from toolkit.settings import read_settings\n", "send_task.py": "",
        relative: source,
    })
    _graph, violations = graph_and_violations(root, is_repository=lambda name: name.startswith("batch_emulator"))
    assert any(expected in v for v in violations), violations


def test_the_checker_names_a_cycle_between_leaf_modules(tmp_path):
    root = _write(tmp_path, {"toolkit/__init__.py": "", "toolkit/jobs.py": "from toolkit import status\n",
                             "toolkit/status.py": "from toolkit.jobs import shown_url\n"})
    graph, violations = graph_and_violations(root)
    assert violations == []
    assert cycles(graph) == ["import cycle: toolkit.jobs imports toolkit.status (toolkit/jobs.py:1); "
                             "toolkit.status imports toolkit.jobs (toolkit/status.py:1)"]
