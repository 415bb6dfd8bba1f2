"""Errors with messages that say what to do next."""


class ProbeError(ValueError):
    """Bad input or configuration: the message explains how to fix it."""


class SubmoduleError(ProbeError, KeyError):
    """A submodule string does not name a module that runs in the model's forward pass."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
