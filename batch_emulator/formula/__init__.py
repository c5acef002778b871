"""The autoscale formula language: tokenizer and parser, static checks, values and the evaluator.

Pure: no I/O, no clock reads, nothing of the rest of the emulator. The service layer
(service/autoscale.py) passes the time, a pool's current values and a view of its samples.

    language.py    error codes, FormulaError, constants, service variables, methods
    functions.py   the functions: one registry of name -> (argument count, implementation)
    syntax.py      tokenizer, syntax tree, recursive-descent parser: parse(formula)
    checks.py      static checks, as pool create / enable autoscale do them: check(formula)
    values.py      value types (Vec, Timestamp, Interval), rendering, operations on values
    operators.py   the operators: one table of (operator, operand types) -> implementation
    evaluator.py   Environment, Outcome and evaluate(formula, env)
"""

from .checks import check
from .evaluator import Environment, Outcome, evaluate
from .language import MESSAGES, SAMPLE_PERIOD_SECONDS, TIME_INTERVALS, FormulaError

__all__ = ["Environment", "Outcome", "evaluate", "check", "FormulaError", "MESSAGES", "SAMPLE_PERIOD_SECONDS",
           "TIME_INTERVALS"]
