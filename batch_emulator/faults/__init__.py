"""Fault injection: answer chosen requests with 429/503/500/409/400, a delay, a cut or a dropped connection.

    rules.py    the rules (FaultRule, Faults, parse_spec for --fault, the control endpoint, apply, cut)
    client.py   add_fault / list_faults / clear_faults: drive a running emulator's control endpoint

The HTTP layer (api/server.py) asks ``Faults.decide`` which rule a request gets and serves it
with ``apply``; the syntax of a rule is in rules.py and in batch_emulator/README.md.
"""

from .client import FaultControlError, add_fault, clear_faults, list_faults
from .rules import (
                    CONTROL_PATH,
                    ERRORS,
                    FIELDS,
                    KINDS,
                    METHODS,
                    SPEC_HELP,
                    FaultError,
                    FaultRule,
                    Faults,
                    apply,
                    control,
                    cut,
                    is_control,
                    make_rule,
                    parse_spec,
                    rule_from_json,
)

__all__ = ["CONTROL_PATH", "ERRORS", "FIELDS", "KINDS", "METHODS", "SPEC_HELP", "FaultControlError", "FaultError",
           "FaultRule", "Faults", "add_fault", "apply", "clear_faults", "control", "cut", "is_control", "list_faults",
           "make_rule", "parse_spec", "rule_from_json"]
