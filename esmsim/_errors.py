"""Exception classes used across esmsim.

Every user-facing error names the field (or argument), the value received and
what is allowed, so that the command line can print it as one line.
"""

from __future__ import annotations


class EsmsimError(Exception):
    """Base class of all esmsim errors."""


class ParameterError(EsmsimError, ValueError):
    """A parameter (material, argument or config field) is invalid.

    Parameters
    ----------
    field : str
        Dotted name of the offending field, e.g. ``"material.D_ab"``.
    message : str
        What is wrong and what is allowed.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ConfigError(ParameterError):
    """A simulation config (TOML file or dict) is invalid."""


class ResolutionWarning(UserWarning):
    """A grid too coarse for what is asked of it (e.g. the surface layer at the requested frequency)."""
