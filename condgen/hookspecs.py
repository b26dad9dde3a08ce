"""The plugin boundary's hooks, at the import path plugins have always used: ``condgen.hookspecs.hookimpl``.

The specifications live in :mod:`condgen.plugin.hookspecs`; this module re-exports them.
"""

from .plugin.hookspecs import *  # noqa: F401,F403
from .plugin.hookspecs import PROJECT_NAME, hookimpl, hookspec  # noqa: F401
