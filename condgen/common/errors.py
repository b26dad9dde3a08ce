"""The toolkit's own error types.

Everything a user can get wrong (a flag, a config value, a condition, a data file)
raises :class:`CondgenError` with one line that names the bad value and what is
allowed. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only annotations: the command line imports this module before (or without) pydantic
    from pydantic import ValidationError


class CondgenError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


class ConditionError(CondgenError, ValueError):
    """A condition (from the CLI or a tensor from Python) is malformed or out of range."""


class PluginError(CondgenError):
    """A plugin is missing, broken, or clashes with another one."""


class DataError(CondgenError):
    """A data set cannot be found or read."""


class ConfigError(CondgenError, ValueError):
    """A configuration value failed validation."""


class ArgumentError(CondgenError, ValueError):
    """An argument of a Python API function has the wrong type or value; the message names it."""


class CheckpointError(CondgenError):
    """A checkpoint is missing, truncated, corrupt, not condgen's, or its contents do not fit together."""


class FileAccessError(CondgenError, OSError):
    """A file or directory cannot be read or written (missing, permission, not text, ...)."""


class ResourceError(CondgenError):
    """A size the user asked for needs more memory than there is."""


class RunDirectoryBusy(CondgenError):
    """Another process is writing this run directory."""


class NumericalError(CondgenError):
    """The loss became NaN or infinite."""


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per failing field: ``model.latent_dim = 0: Input should be greater than 0``."""
    parts = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"])
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        raw = item.get("input")
        shown: Any = _short(raw)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "value_error" and isinstance(raw, dict):  # a check across fields names them itself
            parts.append(f"{loc}: {message}" if loc and not message.startswith(loc) else message)
        elif item["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown field (remove it or check its spelling)")
        elif item["type"] == "missing":
            parts.append(f"{loc}: required field is missing")
        else:
            parts.append(f"{loc} = {shown!r}: {message}")
    return "; ".join(parts)


class _Shown(str):
    """Text shown in place of a long value; its repr is the text itself."""

    def __repr__(self) -> str:
        return str(self)


def _short(value: Any, limit: int = 120) -> Any:
    """``value``, or the start of its repr when that is long (a huge or deeply nested input)."""
    try:
        text = repr(value)
    except RecursionError:  # a list that holds itself
        return _Shown("<a value that holds itself>")
    return value if len(text) <= limit else _Shown(text[:limit] + "...")


def config_error(err: ValidationError, prefix: str = "") -> ConfigError:
    return ConfigError(f"invalid config: {describe_validation_error(err, prefix)}")
