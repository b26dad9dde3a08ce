"""The options of :class:`~condgen.data.config.DataConfig`'s fields: each field's flag and its one help text.

``DataConfig`` takes its field descriptions from here, and ``condgen train`` its ``--dataset``,
``--data-dir``, ... flags; plain Python, so building the command line imports no pydantic.
"""

from __future__ import annotations

from ..common.options import Option

DATA_OPTIONS = (
    Option("dataset", "registered dataset name (default mnist)", section="data"),
    Option("data_dir", "directory of the data files (for mnist the default is $CONDGEN_DATA_DIR, then a "
           "download); for dataset npz, the .npz file", section="data", metavar="DIR"),
    Option("x_field", "the data field the model generates (default image)", section="data", metavar="FIELD"),
    Option("train_limit", "use only the first N training items", section="data", type=int, metavar="N"),
    Option("test_limit", "use only the first N test items", section="data", type=int, metavar="N"),
)
