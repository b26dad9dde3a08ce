"""A Griffe extension for the API reference: the project's docstrings are reST-ish (``code``,
:class:`condgen.Run`, ``text::`` before a literal block); MkDocs renders Markdown.

It rewrites each docstring before mkdocstrings renders it:

- a role (``:class:``, ``:meth:``, ``:func:``, ``:mod:``, ``:attr:``, ``:data:``, ``:exc:``) becomes
  inline code wrapped in an *optional* cross-reference: a link where the target is rendered on
  the site, plain code where it is not; a role naming something of condgen's (or a bare name)
  that does not exist in the code is a warning, so ``mkdocs build --strict`` fails on it;
- a paragraph ending in ``::`` ends in ``:`` (the indented block after it is a code block in
  Markdown too);
- a wrapped line that starts with ``>=`` is text, not a Markdown block quote;
- an attribute documented Sphinx-style, by ``#:`` comment lines just above it, gets them as its
  docstring (``Conditioner.name``, ``condgen.common.rng.EVAL_SEED``);
- a pydantic field without a docstring gets its ``Field(description=...)`` (what
  ``condgen plugins NAME`` shows), so the config reference says what each field means.

Role targets are resolved the way Sphinx would: relative to the class and module of the
docstring, then ``condgen.NAME`` to the module that defines NAME (the site documents objects
under their defining module, e.g. ``condgen.plugin.conditioner.Conditioner``).
"""

from __future__ import annotations

import ast
import logging
import re
from typing import Any

import griffe

#: Our packages: a role naming something in them that does not exist is a warning (a failed strict build).
OURS = {"condgen", "condgen_label", "condgen_inpaint", "condgen_regression"}
LOG = logging.getLogger("mkdocs.plugins.condgen.rest_roles")
ROLE = re.compile(r":(?:py:)?(class|meth|func|mod|attr|data|exc|obj):`~?([^`]+)`")
LITERAL = re.compile(r"::(\n\n[ \t]+)")
COMPARISON_AT_LINE_START = re.compile(r"^([ \t]*)>=", re.MULTILINE)


class RestRoles(griffe.Extension):
    """Rewrite reST roles and literal-block markers in docstrings (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._collection = loader.modules_collection
        for obj in _walk(pkg):
            if obj.is_attribute and obj.docstring is None:
                _comment_docstring(obj)
            if obj.is_attribute and obj.docstring is None:
                _field_description(obj)
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj.docstring.value, obj)

    # -- resolution ---------------------------------------------------------------------------
    def _find(self, path: str) -> griffe.Object | griffe.Alias | None:
        try:
            return self._collection.get_member(path)
        except Exception:  # not loaded, not found, or an alias that does not resolve
            return None

    def _defining(self, name: str) -> str | None:
        """``condgen.X`` -> the path of X in the condgen submodule that defines it."""
        root = self._find("condgen")
        if root is None:
            return None
        for module in _walk(root):
            if isinstance(module, griffe.Module):
                member = module.members.get(name)
                if member is not None and not member.is_alias:
                    return member.path
        return None

    def _resolve(self, target: str, obj: griffe.Object) -> str:
        scopes = []
        if obj.is_class:
            scopes.append(obj.path)
        elif obj.parent is not None and obj.parent.is_class:
            scopes.append(obj.parent.path)
        module = obj if obj.is_module else obj.module
        scopes.append(module.path)
        if module.parent is not None:
            scopes.append(module.parent.path)
        for scope in scopes:
            found = self._find(f"{scope}.{target}")
            if found is not None:
                return _final_path(found)
        found = self._find(target)
        if found is not None:
            return _final_path(found)
        head, _, rest = target.partition(".")
        if head == "condgen" and rest:
            first, _, tail = rest.partition(".")
            defining = self._defining(first)
            if defining is not None:
                return f"{defining}.{tail}" if tail else defining
        return target

    # -- rewriting -------------------------------------------------------------------------------
    def _rewrite(self, text: str, obj: griffe.Object) -> str:
        def role(match: re.Match[str]) -> str:
            shown = match.group(0).split("`")[1]
            target = shown.lstrip("~")
            shown = target.rsplit(".", 1)[-1] if shown.startswith("~") else target
            identifier = self._resolve(target, obj)
            head = target.split(".")[0]
            ours = head in OURS and self._find(head) is not None  # (a package not loaded yet cannot be checked)
            if self._find(identifier) is None and (ours or "." not in target):
                LOG.warning(f"{obj.path}: docstring role {match.group(0)} names nothing in the code")
            return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

        text = COMPARISON_AT_LINE_START.sub(r"\1\\>=", text)
        return LITERAL.sub(r":\1", ROLE.sub(role, text))


def _comment_docstring(attr: griffe.Object) -> None:
    """Give ``attr`` the ``#:`` comment lines right above its definition as its docstring."""
    try:
        lines = attr.lines_collection[attr.filepath]  # type: ignore[index]
    except Exception:  # no source (a compiled or inspected module)
        return
    if not attr.lineno or attr.lineno > len(lines):
        return
    comment: list[str] = []
    number = attr.lineno - 2  # 0-based index of the line above the definition
    while number >= 0 and lines[number].lstrip().startswith("#:"):
        comment.insert(0, lines[number].lstrip()[2:].strip())
        number -= 1
    if comment:
        attr.docstring = griffe.Docstring("\n".join(comment), lineno=number + 2, parent=attr)


def _field_description(attr: griffe.Object) -> None:
    """Give a pydantic field ``x: int = Field(..., description="...")`` its description as docstring."""
    value = getattr(attr, "value", None)
    if not (isinstance(value, griffe.ExprCall) and str(value.function).rsplit(".", 1)[-1] == "Field"):
        return
    for argument in value.arguments:
        if isinstance(argument, griffe.ExprKeyword) and argument.name == "description":
            try:
                text = ast.literal_eval(str(argument.value))
            except (ValueError, SyntaxError):  # not a literal: taken from an option table (condgen.common.options)
                text = _imported_description(attr)
            if isinstance(text, str) and text:
                attr.docstring = griffe.Docstring(text, parent=attr)
            return


def _imported_description(attr: griffe.Object) -> str | None:
    """The description pydantic holds for the field, read from the imported model class."""
    import importlib

    try:
        model = getattr(importlib.import_module(attr.module.path), attr.parent.name)  # type: ignore[union-attr]
        return model.model_fields[attr.name].description
    except Exception:  # not importable here, or not a pydantic model
        return None


def _final_path(found: griffe.Object | griffe.Alias) -> str:
    if found.is_alias:
        try:
            return found.final_target.path  # type: ignore[union-attr]
        except Exception:
            return found.path
    return found.path


def _walk(obj: griffe.Object):
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk(member)
