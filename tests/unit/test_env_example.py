""".env.example shows the real defaults: its commented commands and its values are config_resources' own."""

import re
from pathlib import Path

import config_resources

EXAMPLE = (Path(__file__).resolve().parents[2] / ".env.example").read_text()


def example_value(name: str) -> str:
    """The value of `NAME=...` or `# NAME=...` in .env.example (exactly one such line)."""
    values = re.findall(rf"^(?:# )?{name}=(.*)$", EXAMPLE, flags=re.MULTILINE)
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_the_commented_commands_are_the_defaults():
    assert example_value("START_COMMAND") == config_resources.default_start_command(4)
    assert example_value("NB_PROCESSES") == "4"
    assert example_value("COORDINATION_COMMAND") == config_resources.default_coordination_command()
    assert example_value("CMD_PREP_TASK") == config_resources.default_cmd_prep_task("URL")


def test_every_default_shown_is_config_resources_default():
    for name, default in config_resources.DEFAULTS.items():
        assert example_value(name) == default, name
