"""``condgen plugins``: the installed plugins, or one conditioner's or data set's settings."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..plugin.registry import KINDS, list_plugins

    if args.conditioner:
        return _show_conditioner(args.conditioner, args.json)
    plugins = list_plugins()
    if args.json:
        print(json.dumps([p.as_dict() for p in plugins], indent=2))
        return 0
    rows = [("name", "distribution", "version", *(kind.plural for kind in KINDS), "status")]
    for p in plugins:
        rows.append((
            p.name, p.distribution or "-", p.version or "-",
            *(",".join(p.provides[kind.plural]) or "-" for kind in KINDS),
            "ok" if p.ok else f"BROKEN: {p.error}" if p.error else f"not loaded: {p.not_loaded}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _show_conditioner(name: str, as_json: bool) -> int:
    """``condgen plugins NAME``: a conditioner's (or else a data set's) plugin and its settings, with their
    types, defaults and descriptions."""
    from ..common.errors import PluginError
    from ..plugin.registry import registry

    reg = registry()
    if name not in reg.conditioners and name not in reg.conflicts and (
            name in reg.datasets or reg.withdrawn("dataset", name)):
        loader = reg.dataset_loader(name)  # a name two plugins register: the registry's error naming both
        return _show_settings("data set", name, reg.dataset_options(name), reg.owner("dataset", name),
                              _summary(loader), as_json,
                              f"--data-option KEY=VALUE or data.options in a config file, with --dataset {name}")
    if name not in reg.conditioners and name in reg.plugins:  # a plugin's name: what it provides, not pip install
        return _show_plugin(reg.plugins[name], as_json)
    try:
        cls = reg.conditioner_class(name)
    except PluginError as exc:
        if name in reg.conflicts:  # registered twice: the error says so, and "nor is it a data set" would mislead
            raise
        datasets = ", ".join(sorted(reg.datasets)) or "none"
        raise PluginError(f"{exc}; nor is {name!r} a data set (registered datasets: {datasets})") from None
    return _show_settings("conditioner", name, cls.Config, reg.plugin_of(name), _summary(cls), as_json,
                          f"--conditioner {name}:KEY=VALUE,... or conditioners[].config in a config file")


def _show_plugin(info: Any, as_json: bool) -> int:
    """``condgen plugins PLUGIN``: what one plugin provides (a plugin's name is not a conditioner's)."""
    if as_json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    provides = [f"{kind} {', '.join(names)}" for kind, names in info.provides.items() if names]
    version = f" {info.version}" if info.version else ""
    print(f"plugin {info.name!r} ({info.distribution or 'no distribution'}{version}) provides "
          f"{'; '.join(provides) or 'nothing'}" + ("" if info.ok else f" ({info.error or info.not_loaded})"))
    for names in info.provides.get("conditioners", []), info.provides.get("datasets", []):
        for one in names:
            print(f"  condgen plugins {one}: its settings")
    return 0


#: reST markup in a docstring: ``code``, a role (:class:`a.b.C`, :meth:`~a.B.m`, :doc:`text <target>`), `text`.
_LITERAL = re.compile(r"``(.+?)``")
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`]+)`")
_INTERPRETED = re.compile(r"`([^`]+)`")


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1)
    shown = re.fullmatch(r"(.+?)\s*<[^>]*>", text)  # :ref:`the text <target>` shows the text
    if shown:
        return shown.group(1)
    return text.lstrip("~!").rsplit(".", 1)[-1]  # a dotted target shows its last name: :class:`a.b.C` -> C


def _summary(obj: object) -> str:
    """The first paragraph of ``obj``'s docstring as one line, its reST markup taken out."""
    lines = []
    for line in (getattr(obj, "__doc__", None) or "").strip().splitlines():
        if not line.strip():  # the blank line that ends the first paragraph
            break
        lines.append(line.strip())
    paragraph = " ".join(lines)
    paragraph = _ROLE.sub(_role_text, paragraph)
    paragraph = _LITERAL.sub(r"\1", paragraph)
    return _INTERPRETED.sub(r"\1", paragraph.replace("**", ""))


def _show_settings(kind: str, name: str, model: Any, plugin: Any, summary: str, as_json: bool, how: str) -> int:
    settings = []
    for field, info in (model.model_fields.items() if model is not None else ()):
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        settings.append({"name": field, "type": _type_name(info.annotation), "default": default,
                         "required": info.is_required(), "description": info.description or ""})
    if as_json:
        print(json.dumps({kind.replace("data set", "dataset"): name, "plugin": plugin.name,
                          "distribution": plugin.distribution, "version": plugin.version, "summary": summary,
                          "settings": settings}, indent=2, default=str))
        return 0
    print(f"{kind} {name!r} from {plugin.describe()}")
    if summary:
        print(f"  {summary}")
    if not settings:
        print("  no settings")
        return 0
    print(f"settings ({how}):")
    width = max(len(s["name"]) for s in settings)
    for s in settings:
        default = "required" if s["required"] else f"default {json.dumps(s['default'], default=str)}"
        print(f"  {s['name'].ljust(width)}  {s['type']}, {default}" + (f": {s['description']}" if s["description"] else ""))
    return 0


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if getattr(annotation, "__args__", None) is None else None
    return text or str(annotation).replace("typing.", "")


