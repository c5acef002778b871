"""The knobs of the default START_COMMAND: MPIRUN_ARGS (extra mpirun options, with --processes too) and
send_task.py --program / --args (PROGRAM and PROGRAM_ARGS for one task), each refused in one line, exit 2,
where it would break the command or could not apply (an explicit START_COMMAND)."""

import pytest

import send_task
from config_resources import ConfigError, read_settings, task_settings
from tests.conftest import VALID_ENV
from toolkit.commands import Fabric
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.targets import Target, warn_idle_nodes
from toolkit.vmsizes import cores_of

PROGRAM_PATH = '"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/'


def settings_from(**values):
    return task_settings(read_settings({"BATCH_TOOLKIT_ENV_FILE": "", **VALID_ENV, **values}))


def refused(settings, program=None, program_args=None, sweep=False) -> str:
    with pytest.raises(ToolkitError) as caught:
        send_task.with_knobs(settings, program, program_args, sweep)
    assert caught.value.exit_code == ExitStatus.USAGE
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_mpirun_args_go_after_the_toolkits_options_and_before_the_program():
    settings = settings_from(MPIRUN_ARGS="--bind-to core", PROGRAM_ARGS="--steps 10", NB_PROCESSES="3")
    assert settings.start_command.endswith(
        'mpirun -np 3 --host "$hosts" --bind-to core python3 -m mpi4py '
        f'{PROGRAM_PATH}demo_azure_batch/script.py" --steps 10\'')
    # --processes keeps them.
    assert 'mpirun -np 7 --host "$hosts" --bind-to core python3' in settings.start_command_for(7)
    # Unset, the line is as before: no extra space.
    assert '--host "$hosts" python3 -m mpi4py' in settings_from().start_command


@pytest.mark.parametrize("value", ["--map-by 'node'", "--bind-to core\n--oversubscribe"])
def test_mpirun_args_that_would_break_the_command_are_refused(value):
    with pytest.raises(ConfigError) as caught:
        settings_from(MPIRUN_ARGS=value)
    assert str(caught.value).startswith("MPIRUN_ARGS contains a single quote or a newline. Set it to extra mpirun "
                                        "options, without single quotes or newlines, e.g. --bind-to core in ")
    assert caught.value.variables == ("MPIRUN_ARGS",)


def test_program_and_args_replace_program_and_program_args_for_this_task():
    settings = settings_from(PROGRAM_ARGS="--from-env", MPIRUN_ARGS="--bind-to core")
    both = send_task.with_knobs(settings, "tests/programs/crash.py", "99")
    assert both.start_command.endswith(f'--bind-to core python3 -m mpi4py {PROGRAM_PATH}tests/programs/crash.py" 99\'')
    assert "--from-env" not in both.start_command
    assert "-np 2 " in send_task.start_command(both, 2) and send_task.start_command(both, 2).endswith('crash.py" 99\'')
    args_only = send_task.with_knobs(settings, None, "--intervals 10")
    assert args_only.start_command.endswith('demo_azure_batch/script.py" --intervals 10\'')
    no_args = send_task.with_knobs(settings, None, "")                   # an empty --args: no arguments
    assert no_args.start_command.endswith('script.py"\'')
    assert send_task.with_knobs(settings, None, None) is settings        # neither: the settings as they are


def test_an_empty_program_is_refused_in_one_line():
    assert refused(settings_from(), program="") == ("--program is empty: give the program's path inside the "
                                                    "repository, e.g. src/app.py. Nothing was added.")


@pytest.mark.parametrize("program", ["/abs/path.py", "../up.py", "my prog.py", 'a"b.py'])
def test_a_program_that_would_break_the_command_is_refused(program):
    assert refused(settings_from(), program=program) == (
        f"--program is {program!r}, not a relative path inside the repository without quotes, '$' or spaces. "
        "Nothing was added.")


@pytest.mark.parametrize("program_args", ["--name 'x'", "a\nb"])
def test_args_that_would_break_the_command_are_refused(program_args):
    assert refused(settings_from(), program_args=program_args) == (
        "--args contains a single quote or a newline. Nothing was added.")


@pytest.mark.parametrize("program, program_args, mpirun_args, named", [
    ("src/x.py", None, "", "--program"), (None, "--n 3", "", "--args"), ("src/x.py", "3", "", "--program and --args"),
    (None, None, "--bind-to core", "MPIRUN_ARGS"), (None, "3", "--bind-to core", "--args and MPIRUN_ARGS")])
def test_knobs_of_the_default_command_are_refused_with_an_explicit_start_command(program, program_args,
                                                                                 mpirun_args, named):
    settings = settings_from(START_COMMAND="/bin/bash -c 'my own mpirun'", MPIRUN_ARGS=mpirun_args)
    assert refused(settings, program, program_args) == (
        f"{named} go into the default START_COMMAND, but START_COMMAND is set: put them in START_COMMAND, or "
        "unset it and use PROGRAM. Nothing was added.")
    # Without any of them, an explicit START_COMMAND is used as it is.
    assert send_task.with_knobs(settings_from(START_COMMAND="/bin/true"), None, None).start_command == "/bin/true"


def test_args_with_a_sweep_is_refused_but_program_with_a_sweep_is_taken():
    settings = settings_from()
    assert refused(settings, program_args="3", sweep=True) == (
        "--args and --sweep both give PROGRAM_ARGS (each line of the sweep file is one task's): give one of them. "
        "Nothing was added.")
    assert send_task.with_knobs(settings, "src/x.py", None, sweep=True).program == "src/x.py"


def test_help_names_the_variables_the_options_replace():
    text = send_task.build_parser().format_help()
    for name in ("PROGRAM", "PROGRAM_ARGS", "MPIRUN_ARGS", "--program PATH", '--args "ARGS"'):
        assert name in text, name
    args = send_task.build_parser().parse_args(["--job_id", "j", "--task_id", "t", "--program", "src/x.py",
                                                "--args", "--steps 10"])
    assert (args.program, args.args) == ("src/x.py", "--steps 10")


@pytest.mark.parametrize(("size", "cores"), [("standard_d2s_v5", 2), ("Standard_HB120rs_v3", 120),
                                             ("Standard_HB120-96rs_v3", 96), ("Standard_D16ads_v5", 16),
                                             ("custom", None)])
def test_a_nodes_cores_are_read_from_its_size_name(size, cores):
    assert cores_of(size) == cores


@pytest.mark.parametrize(("nodes", "processes", "idle"), [(3, 4, 1), (4, 2, 3), (2, 4, 0), (2, 5, 0), (3, None, 0)])
def test_nodes_the_ranks_would_not_reach_are_warned_about(capsys, nodes, processes, idle):
    target = Target("j", "p", Fabric.TCP, cores=2)
    warn_idle_nodes(target, nodes, processes)
    err = capsys.readouterr().err
    if not idle:
        assert err == ""
        return
    used = nodes - idle
    assert err == (f"Warning: {processes} MPI process(es) fill {used} of the task's {nodes} nodes (2 cores each): "
                   f"the other {idle} would idle, billed, while it runs. Use --nodes {used}, or more processes "
                   "(--processes).\n")
