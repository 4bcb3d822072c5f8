"""Deployment settings given as environment variables, read when a run uses them and never at import: a bad
value fails the run that needs it, with a clear message, and the code location still loads.

A value set in the resource's config (the launchpad, a test) wins over the variable.
"""

import math
import os

from repro_pipeline.engine.errors import ConfigError, SecretError


def text_setting(configured: str | None, variable: str, default: str) -> str:
    if configured is not None:
        return configured
    return os.environ.get(variable, default)


def positive_setting(configured: float | None, variable: str, default: float) -> float:
    if configured is not None:
        return configured  # the resource's field is validated as positive and finite
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(
            f"{variable}={text!r} is not a positive number", f"set {variable} to e.g. {default:g}"
        )
    return value


def positive_count(configured: int | None, variable: str, default: int) -> int:
    """A whole number of at least 1 (of processes, say): the configured one, else the variable's."""
    if configured is not None:
        return configured  # the resource's field is validated as at least 1
    text = os.environ.get(variable)
    if text is None:
        return default
    if not (text.strip().isdigit() and int(text) >= 1):
        raise ConfigError(
            f"{variable}={text!r} is not a whole number of at least 1", f"set {variable} to e.g. {default}"
        )
    return int(text)


def secret_setting(variable: str, what: str) -> str:
    """A secret, from the environment only: never config, which the UI shows and the run's record keeps."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise SecretError(f"{variable} is not set", f"set {variable} to {what}")
    return value
