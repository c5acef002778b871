"""``--isolation none``: each emulated node's own Python environment, so node preparation never installs into
the project's .venv or the user's system.

A node's virtualenv lives in its node directory (``volatile/python``), so it goes with the node as a VM's
disk does, and a new node starts without what an earlier one installed. It is made without pip, in
milliseconds, with a .pth file that puts the emulator's own site-packages after its own: the venv's mpi4py,
MPICH wheels and pip are seen, and pip (``python3 -m pip``) installs into the node's venv, never into the
emulator's (pip does not remove what lies outside its environment).
"""

from __future__ import annotations

import os
import site
import sys
import threading
import venv
from pathlib import Path

VENV_SUBDIR = Path("volatile") / "python"
# install.sh reads it: on such a node (the user's own machine) it never runs apt.
HOST_NODE_VARIABLE = "BATCH_EMULATOR_HOST_NODE"

_create_lock = threading.Lock()


def node_venv(node_root: str) -> Path:
    """The virtualenv of the node whose directory is NODE_ROOT; made on first use."""
    target = Path(node_root) / VENV_SUBDIR
    with _create_lock:
        if not (target / "bin" / "python3").exists():
            building = target.with_name(target.name + ".new")
            venv.EnvBuilder(with_pip=False, clear=True, symlinks=True).create(building)
            purelib = _site_packages(building)
            (purelib / "emulator-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
            # Shared libraries of the emulator's venv (MPICH's libmpi.so and the lib/mpich its $ORIGIN
            # run path names): mpi4py looks for them under sys.prefix/lib, which is now the node's venv.
            emulator_lib = Path(sys.prefix, "lib") if sys.prefix != sys.base_prefix else None   # a venv's only
            for entry in emulator_lib.iterdir() if emulator_lib else ():
                if not entry.name.startswith("python"):
                    (building / "lib" / entry.name).symlink_to(entry)
            os.replace(building, target)   # a node never sees a half-made venv
    return target


def host_node_environment(node_root: str, path: str) -> dict[str, str]:
    """Variables that make `python3` the node's venv (its bin first on PATH, then PATH: the emulator's MPICH)."""
    target = node_venv(node_root)
    return {"PATH": os.pathsep.join([str(target / "bin"), path]), "VIRTUAL_ENV": str(target),
            HOST_NODE_VARIABLE: "1"}


def _site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob(f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"))
    if not found:
        raise OSError(f"no site-packages in the new virtualenv {venv_dir}")
    return found[0]
