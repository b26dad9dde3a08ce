"""The Widget contract: a conditioner's input on the demo page (``condgen demo``), apart from the Conditioner.

A demo page is built from a run's conditioners: each gets the widget registered for its plugin's conditioner
(``condgen_register_widgets``), and one without gets a text box taking what ``--condition NAME=...`` takes.
The widget part of a plugin is optional and lives beside the conditioner, not in it, so a conditioner never
depends on the web toolkit (Gradio) and a widget can come from another plugin than its conditioner's.

A widget is built once per page, ``cls(conditioner)``, for one conditioner of the run:

- :meth:`Widget.build` makes its input components, inside the page's ``gradio.Blocks``, and returns them
  in order. It is given the ``gradio`` module, so a plugin need not import (or depend on) Gradio itself.
- :meth:`Widget.value` turns what those components hold into a value that
  :meth:`condgen.Conditioner.conditions_from_value` takes (``run.sample({name: value})``), in the user's
  units. Where the run may do without the condition (condition dropout), the page adds a "leave it out" box
  of its own, so a widget need not offer that.

Failures never take the page down: a :class:`condgen.CondgenError` from :meth:`Widget.value` (or from the
conditioner) is shown on the page as the readable message it is; any other exception is shown as a bug of
the widget's plugin, and the server goes on answering. A widget whose constructor or :meth:`Widget.build`
raises is reported in one warning line and replaced by the text box.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .conditioner import Conditioner


class Widget:
    """Subclass, set ``conditioner`` to the registered name of the conditioner it serves, implement
    :meth:`build` and :meth:`value`."""

    #: The registered name of the conditioner this widget serves (``label``): it is used for every conditioner
    #: of that class in a run, whatever its instance name.
    conditioner: ClassVar[str] = ""

    def __init__(self, conditioner: Conditioner) -> None:
        #: The run's conditioner (loaded: its fitted state, class names and shapes are there).
        self.cond = conditioner

    @property
    def label(self) -> str:
        """The heading of its components on the page: the conditioner's instance name."""
        return self.cond.name

    def build(self, gr: ModuleType) -> Sequence[Any]:
        """Make the input components (``gr.Dropdown(...)``, ``gr.Slider(...)``) and return them in order; called
        inside the page's ``gr.Blocks`` context. Their values reach :meth:`value` in the same order."""
        raise NotImplementedError

    def value(self, *inputs: Any) -> Any:
        """The components' values -> a value for :meth:`condgen.Conditioner.conditions_from_value` (one condition,
        or K of them: one row of samples each). Raise :class:`condgen.ConditionError` with a readable message for a bad one."""
        raise NotImplementedError
