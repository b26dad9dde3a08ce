"""Each conditioner's input on the demo page: the :class:`condgen.Widget` registered for it, else a text box.

A widget comes from ``condgen_register_widgets``, keyed by the registered name of the conditioner it serves,
so every instance of that conditioner in a run gets one (``--conditioner colour=label`` gets the label
widget). A conditioner with none gets :class:`TextWidget`, which takes what ``--condition NAME=...`` takes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..common.errors import ConditionError, PluginError
from ..plugin.conditioner import Conditioner
from ..plugin.registry import WIDGETS, PluginWarning, registry
from ..plugin.widget import Widget
from ..runs.run import Run


class TextWidget(Widget):
    """A text box for any conditioner: the text after ``--condition NAME=``, parsed by the conditioner's own
    :meth:`~condgen.Conditioner.parse_condition` (``5``, ``0,1,2``, ``ink:0.2``)."""

    def build(self, gr: ModuleType) -> Sequence[Any]:
        return [gr.Textbox(label=f"{self.label}: as after --condition {self.cond.name}=",
                           placeholder="the value condgen sample takes", elem_id=f"condition-{self.cond.name}")]

    def value(self, text: Any) -> Any:
        if isinstance(text, str):
            text = text.strip()
        if text is None or (isinstance(text, str) and not text):
            raise ConditionError(f"type a value for {self.cond.name!r}, as after --condition {self.cond.name}= "
                                 "on the command line")
        return text


def widget_class(run: Run, name: str) -> type[Widget]:
    """The widget class for the run's conditioner ``name``: the one registered for its conditioner, else
    :class:`TextWidget`; a :class:`condgen.PluginError` where more than one plugin registers one for it."""
    registered = type(run.conditioners[name]).name
    message = registry().withdrawn(WIDGETS, registered)
    if message is not None:
        raise PluginError(message)
    return registry().widgets.get(registered, TextWidget)


def make_widget(run: Run, name: str) -> Widget:
    """The widget of the run's conditioner ``name``, built; one whose constructor raises is reported (a
    :class:`PluginWarning`) and replaced by a :class:`TextWidget`."""
    cls = widget_class(run, name)
    cond: Conditioner = run.conditioners[name]
    if cls is TextWidget:
        return TextWidget(cond)
    try:
        return cls(cond)
    except Exception as exc:  # a plugin's bug must not take the page down: the text box stands in
        warn_broken(cls, name, "constructor", exc)
        return TextWidget(cond)


def warn_broken(cls: type[Widget], name: str, where: str, exc: BaseException) -> None:
    """One warning line: widget ``cls`` of conditioner ``name`` raised in ``where``; the text box is used."""
    plugin = registry().resolve(WIDGETS).owners.get(cls.conditioner, "?")
    warnings.warn(f"widget {cls.__name__} of plugin {plugin!r} for conditioner {name!r} raised in its {where} "
                  f"({type(exc).__name__}: {exc}); the page shows a text box for {name!r} instead",
                  PluginWarning, stacklevel=2)
