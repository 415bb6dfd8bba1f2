"""What the command line says when something is wrong: its error type, and the
library's advice reworded as flags.
"""

from __future__ import annotations


class CLIError(Exception):
    """Bad command-line input: printed without a traceback."""


# The library's messages name its Python options; on the command line the advice is
# the flag (or what to do) instead.
_CLI_WORDING = (
    ("call fit_probes(..., resume=True) to continue", "run the same command again"),
    ("call fit_probes(..., resume=True)", "run the same command again"),
    ("fit_probes(..., resume=True) continues", "the same command again continues"),
    ("(or validation='none')", "(more rows, or a smaller --test-size)"),
    ("ProbeRunner(..., remote=True)", "--remote"),
)


def cli_wording(message: str) -> str:
    for python, flags in _CLI_WORDING:
        message = message.replace(python, flags)
    return message
