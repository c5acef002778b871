"""tools/prefetch_node_packages.sh refuses bad arguments with one line and exit 2, before it needs root or
touches the network (so these run anywhere)."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "prefetch_node_packages.sh"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)


def test_a_missing_requirements_file_is_named(tmp_path):
    missing = tmp_path / "requirements_node.txt"
    done = _run("--requirements", str(missing))
    assert done.returncode == 2
    assert done.stderr == f"prefetch_node_packages.sh: --requirements {missing}: no such file\n"
    assert done.stdout == ""


@pytest.mark.parametrize("args", [("--requirements",), ("--image",)])
def test_an_option_without_its_value_prints_the_usage(args):
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: tools/prefetch_node_packages.sh [--requirements PATH]...")


def test_an_unknown_option_is_named_with_the_usage():
    done = _run("--requirement", "x")
    assert done.returncode == 2
    assert done.stderr.startswith("prefetch_node_packages.sh: unknown option --requirement; usage: ")


def test_help_prints_the_usage_and_exits_0():
    done = _run("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: tools/prefetch_node_packages.sh")
