"""Reading the settings' env file (.env): values taken literally, the names it sets, and whether a
missing one is the env file of a local stack (make local) that is not running.

Used by toolkit/settings.py; depends on nothing else of the repository.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from dotenv.parser import Binding

parse_stream: Callable[[IO[str]], Iterator["Binding"]] | None
try:
    from dotenv.parser import parse_stream
except ImportError:  # not installed: reading an env file then reports it (see read_env_file)
    parse_stream = None

# `make local` (tools/local.py) writes its env file only while the local stack runs, and leaves this marker
# beside it for good (it holds no setting): an env file that is missing beside its marker is a local stack
# that is not running, which is worth saying rather than only "not a file".
LOCAL_STACK_MARKER_SUFFIX = ".local-stack"


def local_stack_marker(env_file: Path) -> Path:
    """The marker `make local` leaves beside the env file it writes (.local/local.env.local-stack)."""
    return env_file.with_name(env_file.name + LOCAL_STACK_MARKER_SUFFIX)


def read_env_file(path: Path) -> tuple[dict[str, str], str | None]:
    """(values, problem) of an env file. Values are taken literally: commands hold $VAR for the
    node's shell, so no interpolation (python-dotenv's default would blank them)."""
    if parse_stream is None:
        return {}, "cannot be read: python-dotenv is not installed (pip install -r requirements.txt)"
    try:
        with open(path, encoding="utf-8") as file:
            bindings = list(parse_stream(file))
    except (OSError, UnicodeDecodeError) as err:
        return {}, f"names {str(path)!r}, which cannot be read ({getattr(err, 'strerror', None) or err})"
    broken = [binding for binding in bindings if binding.error]
    if broken:
        return {}, f"names {str(path)!r}, whose line {broken[0].original.line} is not NAME=value"
    return {b.key: b.value for b in bindings if b.key and b.value is not None}, None


@dataclass(frozen=True)
class Environment:
    values: dict[str, str]              # the env file's values overlaid by the real environment (which wins)
    env_file: str | None                # the file read, if any
    problem: str | None                 # what is wrong with that file
    file_names: tuple[str, ...] = ()    # the names the file sets
    default_missing: bool = False       # no BATCH_TOOLKIT_ENV_FILE and no .env next to the scripts
    local_stack_stopped: bool = False   # the file named is missing beside make local's marker


def load_environment(environ: Mapping[str, str], file_variable: str, default_file: Path) -> Environment:
    """The settings' sources: the env file that `file_variable` names ('' for none; unset: `default_file`,
    when it exists) overlaid by `environ`, which wins."""
    env_file = environ.get(file_variable)
    if env_file is None:
        if not default_file.is_file():
            return Environment(dict(environ), None, None, default_missing=True)
        path = default_file
    elif env_file == "":
        return Environment(dict(environ), None, None)
    else:
        path = Path(env_file)
        if not path.is_file():
            return Environment(dict(environ), None, f"names {env_file!r}, which is not a file",
                               local_stack_stopped=local_stack_marker(path).is_file())
    values, problem = read_env_file(path)
    names = tuple(values)
    values.update(environ)
    return Environment(values, str(path), problem, names)
