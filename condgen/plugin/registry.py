"""Finding plugins, isolating broken ones, and the registry of what they provide.

Plugins come from the entry-point group ``condgen``. The toolkit's own data sets, architectures, likelihoods
and callbacks are registered through the same hooks by its default plugins, just as third-party ones are.
A plugin that fails to import, raises in a hook, or registers something invalid is reported
with a :class:`PluginWarning` and listed as broken; the rest of the toolkit keeps working.

Every hook is one entry of :data:`KINDS` and goes through one registration path, with one rule
for a name that more than one plugin registers: it is withdrawn. Neither entry is used, each
claimant is listed as broken, and using the name is a :class:`condgen.PluginError` naming them
all and the fix. Which one would win otherwise depends on the plugins' load order, which users
neither choose nor see, and a run trained with one plugin's conditioner would load silently with
the other's. The names of the toolkit's own plugin are reserved: another plugin registering one
is refused, as condgen's own commands are.

Two variables choose what loads: ``CONDGEN_PLUGINS`` (only these) and ``CONDGEN_BLOCK_PLUGINS``
(never these, applied after it). A plugin left out is not imported at all, and an error that
needs it names the variable and the fix.

Each kind is resolved on first use, so building the command line runs only the
``condgen_register_commands`` hook (:func:`plugin_commands`); this module imports no torch itself
(only the checks of the conditioner, architecture and likelihood kinds do), so ``condgen --help`` stays fast as long as each plugin's
entry-point module is cheap to import (the built-in ones import their conditioners inside the hooks).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pluggy

from .._version import __version__
from ..common.errors import PluginError
from . import hookspecs
from .command import Command, check_command

if TYPE_CHECKING:
    from .conditioner import Conditioner

ENTRY_POINT_GROUP = "condgen"
#: Comma-separated entry-point (or distribution) names to load; empty loads none; unset loads all.
PLUGINS_ENV = "CONDGEN_PLUGINS"
#: Comma-separated entry-point (or distribution) names never to load, even if PLUGINS_ENV names them.
#: The toolkit's own plugins (:data:`DEFAULT_PLUGINS`: the built-in data sets, architectures, likelihoods and
#: callbacks) cannot be blocked.
BLOCK_ENV = "CONDGEN_BLOCK_PLUGINS"
#: The toolkit's own plugins, registered on every plugin manager; the names they register are reserved.
DEFAULT_PLUGINS = ("condgen.builtins.datasets", "condgen.builtins.architectures", "condgen.builtins.likelihoods",
                   "condgen.builtins.callbacks")


class PluginWarning(UserWarning):
    """A plugin could not be loaded or misbehaved; it was skipped."""


# -- the kinds of thing a plugin registers: one entry per hook ---------------------------------------
def _check_conditioner(cls: object) -> tuple[str, type[Conditioner]]:
    from .conditioner import check_conditioner_class  # imports torch: only this kind may, and only here

    cls = check_conditioner_class(cls)
    return cls.name, cls


def _check_dataset(name: object, loader: object) -> tuple[str, Callable[..., Any]]:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a dataset name must be a non-empty string, got {name!r}")
    if not callable(loader):
        raise TypeError(f"dataset {name!r} needs a callable loader, got {loader!r}")
    options = getattr(loader, "options", None)
    if options is not None:
        from ..data.config import DatasetOptions  # pydantic: only where a data set has options

        if not (isinstance(options, type) and issubclass(options, DatasetOptions)):
            raise TypeError(f"dataset {name!r}: its loader's options must be a subclass of condgen.DatasetOptions "
                            f"(which refuses unknown options), got {options!r}")
    return name, loader


#: What an architecture's or a likelihood's name may be: ``mlp``, ``my-resnet``, ``logistic-mixture``.
ENGINE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def _check_engine_class(cls: object, base: type) -> tuple[str, type]:
    """``(cls.name, cls)`` for a usable subclass of ``base`` (an architecture or a likelihood), else TypeError."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"registered {cls!r}, which is not a subclass of condgen.{base.__name__}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not ENGINE_NAME.match(name):
        raise TypeError(f"{cls.__name__}.name must match {ENGINE_NAME.pattern}, got {name!r}")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise TypeError(f"{cls.__name__} does not implement {', '.join(abstract)}")
    return name, cls


def _check_architecture(cls: object) -> tuple[str, type]:
    from ..engine.architecture import Architecture  # imports torch: only where an architecture is registered

    return _check_engine_class(cls, Architecture)


def _check_likelihood(cls: object) -> tuple[str, type]:
    from ..engine.likelihood import Likelihood  # imports torch: only where a likelihood is registered

    name, cls = _check_engine_class(cls, Likelihood)
    missing = [m for m in ("nll", "mean") if getattr(cls, m) is getattr(Likelihood, m)]
    if missing:
        raise TypeError(f"{cls.__name__} does not implement {', '.join(missing)}")
    return name, cls


def _check_callback(cls: object) -> tuple[str, type]:
    from .callback import Callback  # imports no torch: the contract names its types for type checkers only

    return _check_engine_class(cls, Callback)


def _check_widget(cls: object) -> tuple[str, type]:
    from .conditioner import NAME_PATTERN
    from .widget import Widget  # imports neither torch nor gradio

    if not (isinstance(cls, type) and issubclass(cls, Widget)):
        raise TypeError(f"registered {cls!r}, which is not a subclass of condgen.Widget")
    name = getattr(cls, "conditioner", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise TypeError(f"{cls.__name__}.conditioner must be the name of the conditioner it serves "
                        f"({NAME_PATTERN.pattern}), got {name!r}")
    missing = [m for m in ("build", "value") if getattr(cls, m) is getattr(Widget, m)]
    if missing:
        raise TypeError(f"{cls.__name__} does not implement {', '.join(missing)}")
    return name, cls


def _check_command(command: object) -> tuple[str, Command]:
    command = check_command(command)
    return command.name, command


def _check_attribute(name: object, function: object) -> tuple[str, Callable[..., Any]]:
    if not (isinstance(name, str) and name.isidentifier()):
        raise TypeError(f"an attribute name must be a Python identifier, got {name!r}")
    if not callable(function):
        raise TypeError(f"attribute {name!r} needs a callable function, got {function!r}")
    return name, function


@dataclass(frozen=True)
class HookKind:
    """One hook and what it registers."""

    #: The hook's name in :mod:`condgen.plugin.hookspecs`.
    hook: str
    #: What one registration is called in messages: ``conditioner``.
    noun: str
    #: The plural: a :class:`PluginInfo` attribute, a key of its JSON, a column of ``condgen plugins``.
    plural: str
    #: ``check(*args given to register)`` returns ``(name, value)`` or raises TypeError saying what is wrong.
    check: Callable[..., tuple[str, Any]]
    #: An unknown name lists the installed (or loaded) ones and suggests a plugin to install.
    install_hint: bool = False


CONDITIONERS = HookKind("condgen_register_conditioners", "conditioner", "conditioners", _check_conditioner,
                        install_hint=True)
DATASETS = HookKind("condgen_register_datasets", "dataset", "datasets", _check_dataset)
COMMANDS = HookKind("condgen_register_commands", "command", "commands", _check_command)
ATTRIBUTES = HookKind("condgen_register_attributes", "attribute", "attributes", _check_attribute)
ARCHITECTURES = HookKind("condgen_register_architectures", "architecture", "architectures", _check_architecture,
                         install_hint=True)
LIKELIHOODS = HookKind("condgen_register_likelihoods", "likelihood", "likelihoods", _check_likelihood,
                       install_hint=True)
CALLBACKS = HookKind("condgen_register_callbacks", "callback", "callbacks", _check_callback, install_hint=True)
WIDGETS = HookKind("condgen_register_widgets", "widget", "widgets", _check_widget)
#: Every hook, in the order of the columns of ``condgen plugins``.
KINDS: tuple[HookKind, ...] = (CONDITIONERS, DATASETS, COMMANDS, ATTRIBUTES, ARCHITECTURES, LIKELIHOODS, CALLBACKS,
                               WIDGETS)
_BY_NOUN = {kind.noun: kind for kind in KINDS}
_BY_PLURAL = {kind.plural: kind for kind in KINDS}


@dataclass
class PluginInfo:
    """One row of ``condgen plugins``: a plugin, what it provides of each kind, and whether it works.

    ``info.conditioners``, ``info.datasets``, ``info.commands``, ``info.attributes``, ``info.architectures``,
    ``info.likelihoods``, ``info.callbacks``, ``info.widgets`` (one per :data:`KINDS` entry) are the names it provides that are in use.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    #: A kind's plural -> the names of that kind this plugin provides, in registration order.
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    #: Why an installed plugin was not loaded (``CONDGEN_BLOCK_PLUGINS blocks it``); None if it was.
    not_loaded: str | None = None

    def __post_init__(self) -> None:
        for kind in KINDS:
            self.provides.setdefault(kind.plural, [])

    def __getattr__(self, attr: str) -> list[str]:
        if attr in _BY_PLURAL and "provides" in self.__dict__:
            return self.provides[attr]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

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
            **{kind.plural: self.provides[kind.plural] for kind in KINDS},
            "ok": self.ok,
            "error": self.error,
            "loaded": self.loaded,
            "not_loaded": self.not_loaded,
        }


@dataclass
class Registrations:
    """What one hook registered, after the rule for a name more than one plugin registers."""

    entries: dict[str, Any] = field(default_factory=dict)  # usable name -> value
    owners: dict[str, str] = field(default_factory=dict)  # usable name -> its plugin
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # withdrawn name -> its claimants, sorted
    provided: dict[str, list[str]] = field(default_factory=dict)  # plugin -> its usable names
    errors: dict[str, list[str]] = field(default_factory=dict)  # plugin -> what is wrong with it


def _normal(name: str | None) -> str:
    """A plugin or distribution name as pip compares them (PEP 503): ``Condgen_Label`` is ``condgen-label``."""
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _wanted(env: str | None) -> dict[str, str] | None:
    """The names a variable lists, normalised -> as the user wrote them; None if it is unset."""
    if env is None:
        return None
    return {_normal(n.strip()): n.strip() for n in env.split(",") if n.strip()}


def _env_shown(var: str) -> str:
    return f"{var}={os.environ.get(var, '')!r}"


def _matches(info: PluginInfo, plugin: str | None, distribution: str | None) -> bool:
    return info.name == plugin or bool(distribution and info.distribution == distribution)


def _same_plugins(old: list[tuple[str, object]] | None, new: list[tuple[str, object]]) -> bool:
    """The same names with the very same objects (identity, not ``id()``, which CPython reuses)."""
    return old is not None and len(old) == len(new) and all(a == c and b is d for (a, b), (c, d) in zip(old, new))


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class PluginRegistry:
    """The process-wide plugin state: the plugin manager, the plugins' rows, the plugins the variables
    left out, and what each hook registered, cached until the set of registered plugin objects
    changes (a test registers one) or :meth:`reload`."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._pm: pluggy.PluginManager | None = None
        #: Entry points (and the default plugins) loaded or failed to load: name -> name, distribution,
        #: version, and the import error.
        self._infos: dict[str, PluginInfo] = {}
        #: Installed entry points that PLUGINS_ENV left out, and those BLOCK_ENV blocks (by the name it gave).
        self._filtered: dict[str, PluginInfo] = {}
        self._blocked: dict[str, tuple[PluginInfo, str]] = {}
        #: The (name, plugin object) pairs the caches below were built from.
        self._snapshot: list[tuple[str, object]] | None = None
        self._resolved: dict[str, Registrations] = {}  # hook name -> what it gave
        self._rows: dict[str, PluginInfo] | None = None

    # -- loading -------------------------------------------------------------------------------
    def plugin_manager(self) -> pluggy.PluginManager:
        if self._pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            for mod_name in DEFAULT_PLUGINS:
                pm.register(importlib.import_module(mod_name), name=mod_name)
                self._infos[mod_name] = PluginInfo(mod_name, "condgen", __version__)
            self._load_entry_points(pm)
            self._pm = pm
        return self._pm

    def reload(self) -> None:
        importlib.invalidate_caches()
        self._clear()

    def _load_entry_points(self, pm: pluggy.PluginManager) -> None:
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
                self._blocked[ep.name] = (info, block)
            if wanted is not None and not names & set(wanted):
                self._filtered[ep.name] = info
                continue
            seen |= names
            if block is not None:
                continue  # never imported: blocking is also how to keep a plugin's import side effects out
            self._infos[ep.name] = info
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except (Exception, SystemExit) as exc:  # a broken plugin must not take the toolkit down
                info.error = f"failed to load: {type(exc).__name__}: {exc}"
                self._warn(ep.name, info.error)
        for missing in sorted(set(wanted or {}) - seen):
            warnings.warn(f"{PLUGINS_ENV} names {wanted[missing]!r}, but no installed plugin has that name",
                          PluginWarning, stacklevel=2)
        for name in sorted(set(blocked) - installed):
            own = name in {_normal(p) for p in DEFAULT_PLUGINS} or name == "condgen"
            problem = ("one of the toolkit's own plugins (the built-in data sets, architectures, likelihoods and callbacks), "
                       "which cannot be blocked" if own
                       else "but no installed plugin has that name")
            warnings.warn(f"{BLOCK_ENV} names {blocked[name]!r}, {problem}", PluginWarning, stacklevel=2)

    def _base(self, name: str) -> PluginInfo:
        """A fresh row for a plugin: its name, distribution and version, and nothing it provides."""
        known = self._infos.get(name)
        return PluginInfo(name, known.distribution, known.version) if known else PluginInfo(name)

    def _warn(self, plugin: str, problem: str) -> None:
        warnings.warn(f"{self._base(plugin).describe()} {problem}; skipped", PluginWarning, stacklevel=4)

    # -- resolving the hooks -------------------------------------------------------------------
    def _current(self) -> pluggy.PluginManager:
        """The plugin manager, with the caches dropped if its plugin objects changed since they were built."""
        pm = self.plugin_manager()
        plugins = list(pm.list_name_plugin())
        if not _same_plugins(self._snapshot, plugins):
            self._snapshot, self._resolved, self._rows = plugins, {}, None
        return pm

    def resolve(self, kind: HookKind | str) -> Registrations:
        """What ``kind``'s hook registered, calling it the first time (and when the plugins change)."""
        kind = self.kind(kind)
        pm = self._current()
        if kind.hook not in self._resolved:
            self._resolved[kind.hook] = self._run_hook(pm, kind)
        return self._resolved[kind.hook]

    def _run_hook(self, pm: pluggy.PluginManager, kind: HookKind) -> Registrations:
        """Call ``kind``'s hook plugin by plugin, so a problem is pinned on its plugin, then apply the
        clash rule to every name at once: the result does not depend on the order the hooks ran in."""
        out = Registrations()
        claims: dict[str, list[tuple[str, Any]]] = {}  # name -> (plugin, value) for each plugin claiming it
        order: dict[str, list[str]] = {}  # plugin -> the names it registered, in its order

        def problem(plugin: str, text: str) -> None:
            out.errors.setdefault(plugin, []).append(text)
            self._warn(plugin, text)

        def register(plugin: str, *args: Any, **kwargs: Any) -> None:
            try:
                inspect.signature(kind.check).bind(*args, **kwargs)
            except TypeError as exc:  # said in the hook's terms, not as a call of an internal function
                problem(plugin, f"called {kind.hook}'s register with the wrong arguments ({exc})")
                return
            try:
                name, value = kind.check(*args, **kwargs)
            except TypeError as exc:
                problem(plugin, f"registered an invalid {kind.noun}: {exc}")
                return
            if any(owner == plugin for owner, _ in claims.get(name, ())):
                problem(plugin, f"registered {kind.noun} {name!r} twice; the first is used")
                return
            claims.setdefault(name, []).append((plugin, value))
            order.setdefault(plugin, []).append(name)

        for impl in getattr(pm.hook, kind.hook).get_hookimpls():
            args = {"register": partial(register, impl.plugin_name)}
            try:
                impl.function(**{arg: args[arg] for arg in impl.argnames})
            except Exception as exc:
                problem(impl.plugin_name, f"{kind.hook} raised {type(exc).__name__}: {exc}")

        for name, claimants in claims.items():
            own = [c for c in claimants if c[0] in DEFAULT_PLUGINS]
            if own and len(own) < len(claimants):  # one of the toolkit's own names: it is kept
                for plugin, _ in claimants:
                    if plugin not in DEFAULT_PLUGINS:
                        problem(plugin, f"registered {kind.noun} {name!r}, which is one of condgen's own; "
                                        "choose another name")
                claimants = own
            if len(claimants) == 1:
                out.owners[name], out.entries[name] = claimants[0]
                continue
            out.conflicts[name] = sorted(plugin for plugin, _ in claimants)
            message = self._conflict_message(kind, name, out.conflicts[name])
            for plugin in out.conflicts[name]:
                out.errors.setdefault(plugin, []).append(message)
            warnings.warn(message, PluginWarning, stacklevel=3)
        for plugin, names in order.items():
            usable = [n for n in names if out.owners.get(n) == plugin]
            if usable:
                out.provided[plugin] = usable
        return out

    def _conflict_message(self, kind: HookKind, name: str, claimants: list[str]) -> str:
        who = [self._base(p).describe() for p in claimants]
        both, neither = ("both ", "neither") if len(who) == 2 else ("each of ", "none")
        return (f"{kind.noun} {name!r} is registered by {both}{_listed(who)}, so {neither} is used; "
                f"uninstall one, or block one with {BLOCK_ENV}=NAME")

    # -- looking things up ---------------------------------------------------------------------
    @staticmethod
    def kind(kind: HookKind | str) -> HookKind:
        """A :data:`KINDS` entry, given itself or its noun (``"dataset"``)."""
        return kind if isinstance(kind, HookKind) else _BY_NOUN[kind]

    def entries(self, kind: HookKind | str) -> Mapping[str, Any]:
        """The usable registrations of a kind: name -> value (a withdrawn name is not among them)."""
        return MappingProxyType(self.resolve(kind).entries)

    def get(self, kind: HookKind | str, name: str) -> Any:
        """The value registered under ``name``; PluginError if no plugin registers it or several do."""
        kind = self.kind(kind)
        resolved = self.resolve(kind)
        if name in resolved.conflicts:
            raise PluginError(self._conflict_message(kind, name, resolved.conflicts[name]))
        if name not in resolved.entries:
            raise PluginError(self._unknown(kind, name, resolved))
        return resolved.entries[name]

    def owner(self, kind: HookKind | str, name: str) -> PluginInfo:
        """The row of the plugin that provides ``name``; PluginError as for :meth:`get`."""
        self.get(kind, name)
        return self.plugins[self.resolve(kind).owners[name]]

    def withdrawn(self, kind: HookKind | str, name: str) -> str | None:
        """Why using ``name`` is an error, if more than one plugin registers it; else None."""
        kind = self.kind(kind)
        claimants = self.resolve(kind).conflicts.get(name)
        return self._conflict_message(kind, name, claimants) if claimants else None

    def _unknown(self, kind: HookKind, name: str, resolved: Registrations) -> str:
        known = ", ".join(sorted(resolved.entries)) or "none"
        note = self._filter_note(name)
        if not kind.install_hint:
            return f"unknown {kind.noun} {name!r}; registered {kind.plural}: {known}" + note
        which = "loaded" if self._filtered or self._blocked else "installed"
        return (f"unknown {kind.noun} {name!r}; {which} {kind.plural}: {known}"
                + (note or f" (`condgen plugins` lists plugins; `pip install` one that provides {name!r})"))

    def _filter_note(self, name: str) -> str:
        """``"; CONDGEN_PLUGINS='x' leaves out the installed plugins a, b (...)"`` and the same for the plugins
        CONDGEN_BLOCK_PLUGINS blocks, or "" when neither variable left a plugin out."""
        note = ""
        if self._filtered:
            note += (f"; {_env_shown(PLUGINS_ENV)} leaves out the installed plugins "
                     f"{', '.join(sorted(self._filtered))} (add the one that provides {name!r} to {PLUGINS_ENV}, "
                     "or unset it)")
        if self._blocked:
            note += (f"; {_env_shown(BLOCK_ENV)} blocks the installed plugins {', '.join(sorted(self._blocked))} "
                     f"(remove the one that provides {name!r} from {BLOCK_ENV}, or unset it)")
        return note

    def filtered_out(self, plugin: str | None, distribution: str | None = None) -> str | None:
        self.plugin_manager()
        reasons = []
        if any(_matches(info, plugin, distribution) for info in self._filtered.values()):
            reasons.append(f"{_env_shown(PLUGINS_ENV)} leaves it out; add {plugin or distribution} to "
                           f"{PLUGINS_ENV} or unset it")
        for info, given in self._blocked.values():
            if _matches(info, plugin, distribution):
                reasons.append(f"{_env_shown(BLOCK_ENV)} blocks it; remove {given} from {BLOCK_ENV} or unset it")
                break
        return "; and ".join(reasons) or None

    # -- the rows of `condgen plugins` ---------------------------------------------------------
    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every loaded plugin (and entry point that failed to import) by name, with what it provides;
        every hook runs for it."""
        pm = self._current()
        for kind in KINDS:
            self.resolve(kind)
        if self._rows is None:
            rows = {name: self._base(name) for name, _ in pm.list_name_plugin()}
            for name, known in self._infos.items():  # those that failed to import have no hooks
                rows.setdefault(name, PluginInfo(name, known.distribution, known.version, error=known.error))
            errors: dict[str, list[str]] = {}
            for kind in KINDS:
                resolved = self._resolved[kind.hook]
                for plugin, names in resolved.provided.items():
                    rows[plugin].provides[kind.plural] = list(names)
                for plugin, problems in resolved.errors.items():
                    errors.setdefault(plugin, []).extend(problems)
            for plugin, problems in errors.items():
                rows[plugin].error = "; ".join(dict.fromkeys(problems))  # the same problem twice is said once
            self._rows = rows
        return self._rows

    def left_out(self) -> dict[str, PluginInfo]:
        """The installed plugins that were not loaded, each with why (the variables that left it out)."""
        self.plugin_manager()
        infos: dict[str, PluginInfo] = {}
        for name in sorted(set(self._filtered) | set(self._blocked)):
            base = self._filtered[name] if name in self._filtered else self._blocked[name][0]
            why = ([f"{PLUGINS_ENV} leaves it out"] if name in self._filtered else []) + \
                  ([f"{BLOCK_ENV} blocks it"] if name in self._blocked else [])
            infos[name] = PluginInfo(name, base.distribution, base.version, not_loaded=" and ".join(why))
        return infos

    # -- the names the rest of the toolkit uses ------------------------------------------------
    @property
    def conditioners(self) -> Mapping[str, type[Conditioner]]:
        return self.entries(CONDITIONERS)

    @property
    def conditioner_plugin(self) -> Mapping[str, str]:
        """A usable conditioner's name -> the name of its plugin."""
        return MappingProxyType(self.resolve(CONDITIONERS).owners)

    @property
    def conflicts(self) -> Mapping[str, list[str]]:
        """A conditioner name more than one plugin registers -> those plugins' names."""
        return MappingProxyType(self.resolve(CONDITIONERS).conflicts)

    @property
    def datasets(self) -> Mapping[str, Callable[..., Any]]:
        return self.entries(DATASETS)

    @property
    def dataset_plugin(self) -> Mapping[str, str]:
        return MappingProxyType(self.resolve(DATASETS).owners)

    @property
    def commands(self) -> Mapping[str, Command]:
        return self.entries(COMMANDS)

    @property
    def attributes(self) -> Mapping[str, Callable[..., Any]]:
        return self.entries(ATTRIBUTES)

    def conditioner_class(self, name: str) -> type[Conditioner]:
        """The class registered under ``name``; PluginError if unknown or claimed twice."""
        return self.get(CONDITIONERS, name)

    def plugin_of(self, conditioner: str) -> PluginInfo:
        return self.owner(CONDITIONERS, conditioner)

    def dataset_loader(self, name: str) -> Callable[..., Any]:
        return self.get(DATASETS, name)

    @property
    def architectures(self) -> Mapping[str, type]:
        return self.entries(ARCHITECTURES)

    def architecture_class(self, name: str) -> type:
        """The :class:`condgen.Architecture` subclass registered under ``name``; PluginError if unknown or
        claimed twice."""
        return self.get(ARCHITECTURES, name)

    @property
    def likelihoods(self) -> Mapping[str, type]:
        return self.entries(LIKELIHOODS)

    @property
    def callbacks(self) -> Mapping[str, type]:
        return self.entries(CALLBACKS)

    @property
    def widgets(self) -> Mapping[str, type]:
        """A conditioner's registered name -> the :class:`condgen.Widget` subclass registered for it."""
        return self.entries(WIDGETS)

    def dataset_options(self, name: str) -> type | None:
        """The options model of data set ``name`` (its loader's ``options``), None for a data set without."""
        return getattr(self.get(DATASETS, name), "options", None)


#: The one registry of the process.
_REGISTRY = PluginRegistry()


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use.

    Tests and applications may ``register(obj, name=...)`` extra plugins on it and
    ``unregister(name=...)`` them afterwards; :func:`registry` notices and runs the hooks again.
    """
    return _REGISTRY.plugin_manager()


def reload_plugins() -> None:
    """Forget the loaded plugins, so the next use finds the entry points again: a plugin installed
    since is loaded; one already imported keeps its loaded code until the process restarts."""
    _REGISTRY.reload()


def registry() -> PluginRegistry:
    """What the loaded plugins provide, with every hook run.

    The hooks run once per process; again only when the set of registered plugin objects
    changes (a test registers one) or after :func:`reload_plugins`.
    """
    for kind in KINDS:
        _REGISTRY.resolve(kind)
    return _REGISTRY


def left_out_provider(name: str) -> str | None:
    """For a name no loaded plugin provides (a command, say), the plugin left out by ``CONDGEN_PLUGINS`` or
    ``CONDGEN_BLOCK_PLUGINS`` that it names (the plugin ``inpaint``, or its distribution ``condgen-inpaint``), with
    why and the fix: ``the plugin of that name, 'inpaint' (condgen-inpaint), is installed but not loaded: ...``.
    None where no left-out plugin goes by that name: a left-out plugin's code is not imported to ask it."""
    _REGISTRY.plugin_manager()
    infos = [*_REGISTRY._filtered.values(), *(info for info, _ in _REGISTRY._blocked.values())]
    for info in infos:
        dist = info.distribution or ""
        if name in (info.name, dist) or dist.endswith(f"-{name}"):
            reason = _REGISTRY.filtered_out(info.name, info.distribution)
            return (f"the plugin of that name, {info.name!r} ({dist or 'no distribution'}), is installed but not "
                    f"loaded: {reason}")
    return None


def filtered_out(plugin: str | None, distribution: str | None = None) -> str | None:
    """Why an installed plugin (by entry-point or distribution name) was not loaded, or None if it was
    not left out: ``CONDGEN_PLUGINS='inpaint' leaves it out; ...`` and/or ``CONDGEN_BLOCK_PLUGINS='label'
    blocks it; ...``, each with its fix."""
    return _REGISTRY.filtered_out(plugin, distribution)


def plugin_commands() -> dict[str, Command]:
    """The subcommands the loaded plugins register, by name (a withdrawn name is not among them:
    :func:`withdrawn_commands`).

    Only the ``condgen_register_commands`` hook runs (once, shared with :func:`registry`), so
    building the command line imports no conditioner, nor torch. A plugin that raises in it or
    registers something invalid is warned about and skipped.
    """
    return dict(_REGISTRY.resolve(COMMANDS).entries)


def withdrawn_commands() -> dict[str, str]:
    """The command names more than one plugin registers, each with the error that using it is."""
    return {name: _REGISTRY.withdrawn(COMMANDS, name) for name in _REGISTRY.resolve(COMMANDS).conflicts}


def attributes() -> dict[str, Callable[..., Any]]:
    """The attribute functions the plugins register, by name: ``function(images (B, C, H, W)) -> (B,)``.

    A name more than one plugin registers maps to a function that raises the
    :class:`condgen.PluginError` naming them, so a conditioner using it says why.
    """
    resolved = _REGISTRY.resolve(ATTRIBUTES)
    functions = dict(resolved.entries)
    for name in resolved.conflicts:
        functions[name] = _withdrawn_function(_REGISTRY.withdrawn(ATTRIBUTES, name))
    return functions


def _withdrawn_function(message: str) -> Callable[..., Any]:
    def withdrawn(*args: Any, **kwargs: Any) -> Any:
        raise PluginError(message)

    return withdrawn


def list_plugins() -> list[PluginInfo]:
    """Every installed plugin, loaded, broken, or left out by CONDGEN_PLUGINS / CONDGEN_BLOCK_PLUGINS,
    sorted by name."""
    loaded = registry().plugins
    return sorted({**_REGISTRY.left_out(), **loaded}.values(), key=lambda p: p.name)
