"""The options of :class:`~condgen.data.config.DataConfig`'s fields: each field's flag and its one help text.

``DataConfig`` takes its field descriptions from here, and ``condgen train`` its ``--dataset``,
``--data-dir``, ``--data-option``, ... flags; plain Python, so building the command line imports no pydantic.
"""

from __future__ import annotations

from typing import Any

from ..common.errors import ConfigError
from ..common.options import Option, parse_setting


def _lay_data_options(given: Any, texts: list[str]) -> dict[str, Any]:
    """``--data-option KEY=VALUE`` flags laid over the config's ``data.options``: each sets one key, which the
    data set's own options model converts when the config is parsed."""
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"data.options must be a mapping of option names to values, got {given!r}")
    options = dict(given or {})
    seen: set[str] = set()
    for text in texts:
        key, value = parse_setting(text, f"--data-option {text!r}", "--data-option 'size=[32,32]'; `condgen plugins "
                                   "DATASET` lists a data set's options")
        if key in seen:
            raise ConfigError(f"--data-option {key}=... is given twice; give it once")
        seen.add(key)
        options[key] = value
    return options

DATA_OPTIONS = (
    Option("dataset", "registered dataset name (default mnist)", section="data"),
    Option("data_dir", "directory of the data files (for mnist the default is $CONDGEN_DATA_DIR, then a "
           "download); for dataset npz, the .npz file", section="data", metavar="DIR"),
    Option("x_field", "the data field the model generates (default image)", section="data", metavar="FIELD"),
    Option("train_limit", "use only the first N training items", section="data", type=int, metavar="N"),
    Option("test_limit", "use only the first N test items", section="data", type=int, metavar="N"),
    Option("options", "the data set's own options, KEY=VALUE (repeatable; JSON for lists: 'size=[32,32]'), "
           "converted and checked by the data set's options model (`condgen plugins DATASET` lists them)",
           section="data", flag="--data-option", action="append", metavar="KEY=VALUE", merge=_lay_data_options),
)
