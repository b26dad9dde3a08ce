"""Finding plugins, isolating broken ones, and the registry of what they provide.

Plugins come from the entry-point group ``condgen``. The toolkit's own data sets are
registered through the same hooks by a default plugin, just as third-party ones are.
A plugin that fails to import, raises in a hook, or registers something that is not a
valid conditioner is reported with a :class:`PluginWarning` and listed as broken; the
rest of the toolkit keeps working.

Two variables choose what loads: ``CONDGEN_PLUGINS`` (only these) and ``CONDGEN_BLOCK_PLUGINS``
(never these, applied after it). A plugin left out is not imported at all, and an error that
needs it names the variable and the fix.

Building the command line runs only the ``condgen_register_commands`` hook (:func:`plugin_commands`),
and this module imports no torch itself, so ``condgen --help`` stays fast as long as each plugin's
entry-point module is cheap to import (the built-in ones import their conditioners inside the hooks).
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from ._version import __version__
from .command import Command, check_command
from .errors import PluginError

if TYPE_CHECKING:
    from .conditioner import Conditioner

ENTRY_POINT_GROUP = "condgen"
#: Comma-separated entry-point (or distribution) names to load; empty loads none; unset loads all.
PLUGINS_ENV = "CONDGEN_PLUGINS"
#: Comma-separated entry-point (or distribution) names never to load, even if PLUGINS_ENV names them.
#: The toolkit's own plugin (``condgen.data.builtin``, the built-in data sets) cannot be blocked.
BLOCK_ENV = "CONDGEN_BLOCK_PLUGINS"
#: The toolkit's own plugins, registered on every plugin manager.
DEFAULT_PLUGINS = ("condgen.data.builtin",)


class PluginWarning(UserWarning):
    """A plugin could not be loaded or misbehaved; it was skipped."""


@dataclass
class PluginInfo:
    """One row of ``condgen plugins``."""

    name: str
    distribution: str | None = None
    version: str | None = None
    conditioners: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    error: str | None = None
    #: Why an installed plugin was not loaded (``CONDGEN_BLOCK_PLUGINS blocks it``); None if it was.
    not_loaded: str | None = None

    @property
    def loaded(self) -> bool:
        return self.not_loaded is None

    @property
    def ok(self) -> bool:
        """Loaded and working: neither broken nor left out."""
        return self.error is None and self.not_loaded is None

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "not from a distribution"
        return f"plugin {self.name!r} ({dist})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "conditioners": self.conditioners,
            "datasets": self.datasets,
            "commands": self.commands,
            "attributes": self.attributes,
            "ok": self.ok,
            "error": self.error,
            "loaded": self.loaded,
            "not_loaded": self.not_loaded,
        }


_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
#: Installed entry points that PLUGINS_ENV left out, and those BLOCK_ENV blocks (by the name it gave):
#: entry-point name -> PluginInfo (not imported: name, distribution, version only).
_filtered: dict[str, PluginInfo] = {}
_blocked: dict[str, tuple[PluginInfo, str]] = {}
#: The registry, and the (name, plugin object) pairs it was built from.
_registry: tuple[list[tuple[str, object]], "Registry"] | None = None
#: What the command hook gave, and the (name, plugin object) pairs it ran on.
_command_hook: tuple[list[tuple[str, object]], "_CommandHook"] | None = None


def _warn(info: PluginInfo, problem: str) -> None:
    warnings.warn(f"{info.describe()} {problem}; skipped", PluginWarning, stacklevel=3)


def _normal(name: str | None) -> str:
    """A plugin or distribution name as pip compares them (PEP 503): ``Condgen_Label`` is ``condgen-label``."""
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _wanted(env: str | None) -> dict[str, str] | None:
    """The names a variable lists, normalised -> as the user wrote them; None if it is unset."""
    if env is None:
        return None
    return {_normal(n.strip()): n.strip() for n in env.split(",") if n.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = _wanted(os.environ.get(PLUGINS_ENV))
    blocked = _wanted(os.environ.get(BLOCK_ENV)) or {}
    seen: set[str] = set()  # normalised names (entry point or distribution) that the filter matched
    installed: set[str] = set()  # every installed entry point's normalised names, for the block list
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else None
        info = PluginInfo(ep.name, dist_name, dist.version if dist is not None else None)
        names = {_normal(ep.name), _normal(dist_name)} - {""}
        installed |= names
        block = next((blocked[n] for n in sorted(names) if n in blocked), None)
        if block is not None:
            _blocked[ep.name] = (info, block)
        if wanted is not None and not names & set(wanted):
            _filtered[ep.name] = info
            continue
        seen |= names
        if block is not None:
            continue  # never imported: blocking is also how to keep a plugin's import side effects out
        _infos[ep.name] = info
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the toolkit down
            info.error = f"failed to load: {type(exc).__name__}: {exc}"
            _warn(info, info.error)
    for missing in sorted(set(wanted or {}) - seen):
        warnings.warn(
            f"{PLUGINS_ENV} names {wanted[missing]!r}, but no installed plugin has that name", PluginWarning,
            stacklevel=2,
        )
    for name in sorted(set(blocked) - installed):
        own = name in {_normal(p) for p in DEFAULT_PLUGINS} or name == "condgen"
        problem = ("the toolkit's own plugin (the built-in data sets), which cannot be blocked" if own
                   else "but no installed plugin has that name")
        warnings.warn(f"{BLOCK_ENV} names {blocked[name]!r}, {problem}", PluginWarning, stacklevel=2)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use.

    Tests and applications may ``register(obj, name=...)`` extra plugins on it and
    ``unregister(name=...)`` them afterwards; :func:`registry` notices and runs the hooks again.
    """
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        for mod_name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(mod_name), name=mod_name)
            _infos[mod_name] = PluginInfo(mod_name, "condgen", __version__)
        _load_entry_points(pm)
        _pm = pm
    return _pm


def reload_plugins() -> None:
    """Forget the loaded plugins, so the next use finds the entry points again: a plugin installed
    since is loaded; one already imported keeps its loaded code until the process restarts."""
    global _pm, _registry, _command_hook
    importlib.invalidate_caches()
    _pm = None
    _registry = None
    _command_hook = None
    _infos.clear()
    _filtered.clear()
    _blocked.clear()


def _env_shown(var: str) -> str:
    return f"{var}={os.environ.get(var, '')!r}"


def _matches(info: PluginInfo, plugin: str | None, distribution: str | None) -> bool:
    return info.name == plugin or bool(distribution and info.distribution == distribution)


def filtered_out(plugin: str | None, distribution: str | None = None) -> str | None:
    """Why an installed plugin (by entry-point or distribution name) was not loaded, or None if it was
    not left out: ``CONDGEN_PLUGINS='inpaint' leaves it out; ...`` and/or ``CONDGEN_BLOCK_PLUGINS='label'
    blocks it; ...``, each with its fix."""
    get_plugin_manager()
    reasons = []
    if any(_matches(info, plugin, distribution) for info in _filtered.values()):
        reasons.append(f"{_env_shown(PLUGINS_ENV)} leaves it out; add {plugin or distribution} to {PLUGINS_ENV} "
                       "or unset it")
    for info, given in _blocked.values():
        if _matches(info, plugin, distribution):
            reasons.append(f"{_env_shown(BLOCK_ENV)} blocks it; remove {given} from {BLOCK_ENV} or unset it")
            break
    return "; and ".join(reasons) or None


def _filter_note(name: str) -> str:
    """``"; CONDGEN_PLUGINS='x' leaves out the installed plugins a, b (...)"`` and the same for the plugins
    CONDGEN_BLOCK_PLUGINS blocks, or "" when neither variable left a plugin out."""
    note = ""
    if _filtered:
        note += (f"; {_env_shown(PLUGINS_ENV)} leaves out the installed plugins {', '.join(sorted(_filtered))} "
                 f"(add the one that provides {name!r} to {PLUGINS_ENV}, or unset it)")
    if _blocked:
        note += (f"; {_env_shown(BLOCK_ENV)} blocks the installed plugins {', '.join(sorted(_blocked))} "
                 f"(remove the one that provides {name!r} from {BLOCK_ENV}, or unset it)")
    return note


def _left_out() -> dict[str, PluginInfo]:
    """The installed plugins that were not loaded, each with why (the variables that left it out)."""
    infos: dict[str, PluginInfo] = {}
    for name in sorted(set(_filtered) | set(_blocked)):
        base = _filtered[name] if name in _filtered else _blocked[name][0]
        why = ([f"{PLUGINS_ENV} leaves it out"] if name in _filtered else []) + \
              ([f"{BLOCK_ENV} blocks it"] if name in _blocked else [])
        infos[name] = PluginInfo(name, base.distribution, base.version, not_loaded=" and ".join(why))
    return infos


@dataclass
class Registry:
    """What the loaded plugins provide: the result of calling every plugin's hooks once."""

    plugins: dict[str, PluginInfo]
    conditioners: dict[str, type[Conditioner]] = field(default_factory=dict)
    conditioner_plugin: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    datasets: dict[str, Callable[..., Any]] = field(default_factory=dict)
    dataset_plugin: dict[str, str] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    attributes: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def conditioner_class(self, name: str) -> type[Conditioner]:
        """The class registered under ``name``; PluginError if unknown or claimed twice."""
        if name in self.conflicts:
            owners = " and ".join(self.plugins[p].describe() for p in self.conflicts[name])
            raise PluginError(
                f"conditioner {name!r} is registered by both {owners}; uninstall one, "
                f"or block one with {BLOCK_ENV}=NAME"
            )
        if name not in self.conditioners:
            known = ", ".join(sorted(self.conditioners)) or "none"
            which = "loaded" if _filtered or _blocked else "installed"
            raise PluginError(
                f"unknown conditioner {name!r}; {which} conditioners: {known}"
                + (_filter_note(name) or f" (`condgen plugins` lists plugins; `pip install` one that provides {name!r})")
            )
        return self.conditioners[name]

    def plugin_of(self, conditioner: str) -> PluginInfo:
        return self.plugins[self.conditioner_plugin[conditioner]]

    def dataset_loader(self, name: str) -> Callable[..., Any]:
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise PluginError(f"unknown dataset {name!r}; registered datasets: {known}" + _filter_note(name))
        return self.datasets[name]


def _call_each(
    pm: pluggy.PluginManager,
    hook_name: str,
    infos: dict[str, PluginInfo],
    make_register: Callable[[str], Callable[..., None]],
) -> None:
    """Call one hook plugin by plugin, so an exception is pinned on the plugin that raised it.

    ``make_register(plugin_name)`` builds the ``register`` callback handed to that plugin.
    """
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        info = infos[impl.plugin_name]
        kwargs = {"register": make_register(impl.plugin_name)}
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as exc:
            info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
            _warn(info, info.error)


def registry() -> Registry:
    """What the loaded plugins provide.

    The hooks run once per process; again only when the set of registered plugin objects
    changes (a test registers one) or after :func:`reload_plugins`.
    """
    global _registry
    pm = get_plugin_manager()
    plugins = list(pm.list_name_plugin())
    if _registry is None or not _same_plugins(_registry[0], plugins):
        _registry = (plugins, _build_registry(pm))
    return _registry[1]


def _same_plugins(old: list[tuple[str, object]], new: list[tuple[str, object]]) -> bool:
    """The same names with the very same objects (identity, not ``id()``, which CPython reuses)."""
    return len(old) == len(new) and all(a == c and b is d for (a, b), (c, d) in zip(old, new))


def _fresh_infos(pm: pluggy.PluginManager) -> dict[str, PluginInfo]:
    """A new row for every registered plugin object, and for each entry point that failed to import."""
    infos: dict[str, PluginInfo] = {}
    for name, plugin in pm.list_name_plugin():
        known = _infos.get(name)
        infos[name] = PluginInfo(name, known.distribution, known.version) if known else PluginInfo(name)
    for name, known in _infos.items():
        if name not in infos:
            infos[name] = PluginInfo(name, known.distribution, known.version, error=known.error)
    return infos


@dataclass
class _CommandHook:
    """What ``condgen_register_commands`` gave: the commands, and per plugin its commands and error."""

    commands: dict[str, Command]
    by_plugin: dict[str, list[str]]
    errors: dict[str, str]


def plugin_commands() -> dict[str, Command]:
    """The subcommands the loaded plugins register, by name.

    Only the ``condgen_register_commands`` hook runs (once, shared with :func:`registry`), so
    building the command line imports no conditioner, nor torch. A plugin that raises in it or
    registers something invalid is warned about and skipped, as in :func:`registry`.
    """
    return _commands_hook(get_plugin_manager()).commands


def _commands_hook(pm: pluggy.PluginManager) -> _CommandHook:
    global _command_hook
    plugins = list(pm.list_name_plugin())
    if _command_hook is None or not _same_plugins(_command_hook[0], plugins):
        _command_hook = (plugins, _run_commands_hook(pm))
    return _command_hook[1]


def _run_commands_hook(pm: pluggy.PluginManager) -> _CommandHook:
    infos = _fresh_infos(pm)
    commands: dict[str, Command] = {}

    def register_command(owner: str, command: Any) -> None:
        try:
            command = check_command(command)
            if command.name in commands:
                raise TypeError(f"command {command.name!r} is registered by another plugin already")
        except TypeError as exc:
            infos[owner].error = f"registered an invalid command: {exc}"
            _warn(infos[owner], infos[owner].error)
            return
        infos[owner].commands.append(command.name)
        commands[command.name] = command

    _call_each(pm, "condgen_register_commands", infos, lambda owner: partial(register_command, owner))
    return _CommandHook(
        commands,
        {name: info.commands for name, info in infos.items() if info.commands},
        # entry points that failed to import have no hooks; their error is in _infos already
        {name: info.error for name, info in infos.items() if info.error and pm.has_plugin(name)},
    )


def _build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's hooks and collect the conditioners and datasets they register."""
    from .conditioner import check_conditioner_class  # imports torch: not needed to build the command line

    infos = _fresh_infos(pm)
    reg = Registry(plugins=infos)

    def register_conditioner(owner: str, cls: Any) -> None:
        try:
            cls = check_conditioner_class(cls)
        except TypeError as exc:
            infos[owner].error = f"registered an invalid conditioner: {exc}"
            _warn(infos[owner], infos[owner].error)
            return
        infos[owner].conditioners.append(cls.name)
        if cls.name in reg.conditioners or cls.name in reg.conflicts:
            first = reg.conflicts.get(cls.name, [reg.conditioner_plugin.get(cls.name, owner)])
            reg.conflicts[cls.name] = first + [owner]
            reg.conditioners.pop(cls.name, None)
            message = f"conditioner {cls.name!r} is registered by both " + " and ".join(
                infos[p].describe() for p in reg.conflicts[cls.name]
            )
            for p in reg.conflicts[cls.name]:
                infos[p].error = message
            warnings.warn(message, PluginWarning, stacklevel=2)
            return
        reg.conditioners[cls.name] = cls
        reg.conditioner_plugin[cls.name] = owner

    def register_dataset(owner: str, name: str, loader: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not callable(loader):
            infos[owner].error = f"registered an invalid dataset {name!r} -> {loader!r}"
            _warn(infos[owner], infos[owner].error)
            return
        infos[owner].datasets.append(name)
        reg.datasets.setdefault(name, loader)
        reg.dataset_plugin.setdefault(name, owner)

    def register_attribute(owner: str, name: Any, function: Any) -> None:
        if not (isinstance(name, str) and name.isidentifier()) or not callable(function):
            problem = f"registered an invalid attribute function {name!r} -> {function!r}"
        elif name in reg.attributes:
            problem = f"registered attribute function {name!r}, which another plugin registered first"
        else:
            infos[owner].attributes.append(name)
            reg.attributes[name] = function
            return
        infos[owner].error = problem
        _warn(infos[owner], problem)

    _call_each(pm, "condgen_register_conditioners", infos, lambda owner: partial(register_conditioner, owner))
    commands = _commands_hook(pm)  # run once for the command line already, if it was built
    reg.commands = dict(commands.commands)
    for owner, names in commands.by_plugin.items():
        infos[owner].commands = list(names)
    for owner, error in commands.errors.items():
        infos[owner].error = error
    _call_each(pm, "condgen_register_datasets", infos, lambda owner: partial(register_dataset, owner))
    _call_each(pm, "condgen_register_attributes", infos, lambda owner: partial(register_attribute, owner))
    return reg


def attributes() -> dict[str, Callable[..., Any]]:
    """The attribute functions the plugins register, by name: ``function(images (B, C, H, W)) -> (B,)``."""
    return dict(registry().attributes)


def list_plugins() -> list[PluginInfo]:
    """Every installed plugin, loaded, broken, or left out by CONDGEN_PLUGINS / CONDGEN_BLOCK_PLUGINS,
    sorted by name."""
    loaded = registry().plugins
    return sorted({**_left_out(), **loaded}.values(), key=lambda p: p.name)
