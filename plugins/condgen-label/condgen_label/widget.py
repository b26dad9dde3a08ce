"""The ``label`` conditioner's input on the demo page (``condgen demo``): a choice of class, by name."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import condgen

#: The choice that draws a row of samples for every class.
ALL = "all"


class LabelWidget(condgen.Widget):
    """A drop-down of the classes, by name where the data named them (``7``, ``Sneaker``), and "all classes"."""

    conditioner = "label"

    def choices(self) -> list[tuple[str, str]]:
        """``(shown, value)`` pairs: each class, then all of them; a value is what ``--condition label=`` takes
        (``#N``, class number N whatever the classes' names)."""
        names = getattr(self.cond, "class_names", None)
        k = self.cond.config.num_classes
        shown = [str(i) if names is None or names[i] == str(i) else f"{names[i]} (#{i})" for i in range(k)]
        return [*[(s, f"#{i}") for i, s in enumerate(shown)], ("all classes (a row each)", ALL)]

    def build(self, gr: ModuleType) -> Sequence[Any]:
        choices = self.choices()
        return [gr.Dropdown(choices, value=choices[0][1], label=f"{self.label}: class",
                            elem_id=f"condition-{self.cond.name}")]

    def value(self, choice: Any) -> Any:
        if not isinstance(choice, str) or not choice:
            raise condgen.ConditionError(f"choose a class for {self.cond.name!r}")
        return choice  # the conditioner parses it as on the command line
