"""What the emulator's own environment passes on to tasks in --isolation none mode."""

from batch_emulator.runtime.processes import Launcher


def test_tasks_get_neither_credentials_nor_the_emulators_python_settings(monkeypatch):
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")   # with it, MPI ranks mix their lines mid-line
    monkeypatch.setenv("PYTHONPATH", "/the/emulators/path")
    monkeypatch.setenv("AZURE_BATCH_ACCESS_KEY", "k")
    monkeypatch.setenv("LANG", "C.UTF-8")

    env = Launcher().base_env

    assert not [name for name in env if name.startswith(("PYTHON", "AZURE_"))]
    assert env["LANG"] == "C.UTF-8"
