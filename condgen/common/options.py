"""Command-line options declared once, as data: a flag with its type and help, and the config field it sets.

Each config's fields are declared beside the config (``condgen.data.options``, ``condgen.runs.options``);
the config takes its fields' descriptions from them, and the command line builds its parser and lays the
flags the user gave over a config from the same declarations. Plain Python: declaring the options and
building a parser import neither pydantic nor torch, so ``condgen --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .errors import ConfigError

#: The part of a run's config an option may set: the run's own fields (``conditioners``) or a section.
SECTIONS = ("run", "model", "data", "train")


@dataclass(frozen=True)
class Option:
    """One flag of a command, or one config field that has none (``config_file_only``).

    ``name`` is the config field the option sets in ``section``, or, for an option that sets no config
    field (``section`` None: ``--out``, ``--resume``), the attribute argparse stores it in. The flag is
    ``--name`` with dashes unless ``flag`` says otherwise. ``help`` is written once: it is the flag's help
    and, for a config field, that field's description. ``merge(config_value, flag_value)`` lays the
    flag's value over what the config holds (default: the flag's value replaces it).
    """

    name: str
    help: str
    section: Optional[str] = None
    flag: Optional[str] = None
    positional: bool = False
    config_file_only: bool = False
    type: Optional[Callable[[str], Any]] = None
    nargs: Optional[str] = None
    metavar: Optional[str] = None
    action: Optional[str] = None
    default: Any = None
    required: bool = False
    merge: Optional[Callable[[Any, Any], Any]] = None

    def __post_init__(self) -> None:
        if self.section is not None and self.section not in SECTIONS:
            raise ValueError(f"option {self.name!r}: section {self.section!r} is not one of {SECTIONS}")
        if self.section is not None and (self.default is not None or self.required or self.positional):
            # a flag left out must read as None, so the config's own value (or its default) stays
            raise ValueError(f"option {self.name!r} sets a config field: it takes no default and is not required")
        if self.config_file_only and self.section is None:
            raise ValueError(f"option {self.name!r}: only a config field can be config-file-only")

    @property
    def option_string(self) -> str:
        """``--latent-dim``, or a positional's name."""
        if self.positional:
            return self.name
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds the flag's value (argparse's own choice)."""
        return self.name if self.positional else self.option_string.lstrip("-").replace("-", "_")

    @property
    def sets(self) -> Optional[str]:
        """The config field the option sets, dotted (``model.latent_dim``; ``conditioners``), or None."""
        if self.section is None:
            return None
        return self.name if self.section == "run" else f"{self.section}.{self.name}"


def descriptions(options: Iterable[Option]) -> dict[str, str]:
    """``{field: help}`` for the options that set a config field: their pydantic ``Field`` descriptions."""
    return {o.name: o.help for o in options if o.section is not None}


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Declare each option that has a flag on ``parser``."""
    for o in options:
        if o.config_file_only:
            continue
        given = {"type": o.type, "nargs": o.nargs, "metavar": o.metavar, "action": o.action, "default": o.default}
        kwargs = {key: value for key, value in given.items() if value is not None}
        if o.required:
            kwargs["required"] = True
        if not o.positional:
            kwargs["dest"] = o.dest
        parser.add_argument(o.option_string, help=o.help, **kwargs)


def flag_values(args: argparse.Namespace, options: Iterable[Option]) -> list[tuple[Option, Any]]:
    """The options that set a config field and were given on the command line, with their values."""
    given = []
    for o in options:
        if o.section is not None and not o.config_file_only:
            value = getattr(args, o.dest)
            if value is not None:
                given.append((o, value))
    return given


def lay_over(data: dict[str, Any], given: Iterable[tuple[Option, Any]]) -> dict[str, Any]:
    """``data`` (a config as plain dicts, sections already mappings) with each given flag's value set."""
    for option, value in given:
        target = data if option.section == "run" else data.setdefault(option.section, {})
        target[option.name] = option.merge(target.get(option.name), value) if option.merge else value
    return data


def coverage_problems(options: Iterable[Option], fields: Mapping[str, Iterable[str]]) -> list[str]:
    """What is wrong between ``options`` and the config fields ``{section: field names}`` they should cover:
    a field with neither a flag nor a config-file-only mark, a field declared twice, an option naming a
    field that does not exist. Empty when every field is declared exactly once."""
    fields = {section: list(names) for section, names in fields.items()}
    declared: dict[tuple[str, str], Option] = {}
    problems = []
    for o in options:
        if o.section is None:
            continue
        key = (o.section, o.name)
        if key in declared:
            problems.append(f"{o.sets} is declared twice ({declared[key].option_string}, {o.option_string})")
        declared[key] = o
        if o.name not in fields.get(o.section, ()):
            problems.append(f"option {o.option_string} sets {o.sets}, which does not exist")
    for section, names in fields.items():
        for name in names:
            if (section, name) not in declared:
                shown = name if section == "run" else f"{section}.{name}"
                problems.append(f"{shown} has neither a flag nor a config-file-only mark")
    return problems


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets and quotes, so ``hidden=[64,64],x=1`` is two settings."""
    parts, depth, current = [], 0, ""
    quoted = False
    for ch in text:
        quoted ^= ch == '"'
        depth += ch in "[{(" and not quoted
        depth -= ch in "]})" and not quoted
        if ch == sep and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def parse_setting(item: str, flag: str, example: str) -> tuple[str, Any]:
    """``KEY=VALUE`` typed on the command line -> ``(KEY, value)``, for a plugin's config to convert.

    A value that starts with ``[``, ``{`` or ``"`` is read as JSON (``[64, 64]``, ``"a,b"``); ``null`` is
    None; anything else is text that the config converts (``16``, ``0.5``, ``true``, ``learned``:
    :class:`condgen.common.schema.Text`). ``flag`` (``--data-option 'size=[32,32]'``) and ``example``
    (``size=[32,32]``) name the flag in errors.
    """
    key, eq, raw = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"{flag}: setting {item.strip()!r} must look like KEY=VALUE (e.g. {example})")
    value = raw.strip()
    if value[:1] in ("[", "{", '"'):
        try:
            return key, json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{flag}: setting {key!r} is not valid JSON ({exc})") from None
    from .schema import Text  # imports pydantic: only when a flag is converted, not for --help

    return key, None if value == "null" else Text(value)
