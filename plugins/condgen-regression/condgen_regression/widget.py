"""The ``regression`` conditioner's input on the demo page (``condgen demo``): a slider per target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import condgen

#: Each slider spans the target's training mean +- this many standard deviations.
SPAN_STDS = 3.0
#: Steps across a slider.
STEPS = 200


def _round(x: float) -> float:
    """``x`` to 3 significant digits: the slider's ends and step, readable."""
    return 0.0 if x == 0 else round(x, 2 - int(math.floor(math.log10(abs(x)))))


class RegressionWidget(condgen.Widget):
    """One slider per target, in the target's own units, from its training mean - 3 std to mean + 3 std, set
    at the mean."""

    conditioner = "regression"

    def ranges(self) -> list[tuple[str, float, float, float, float]]:
        """``(target, low, high, step, mean)`` for each target, from what the conditioner learnt in training."""
        out = []
        for target, mean, std in zip(self.cond.targets, self.cond.mean, self.cond.std):
            half = SPAN_STDS * std
            step = _round(2 * half / STEPS) or 1e-6
            out.append((target, _round(mean - half), _round(mean + half), step, _round(mean)))
        return out

    def build(self, gr: ModuleType) -> Sequence[Any]:
        return [gr.Slider(low, high, value=mean, step=step, label=f"{self.label}: {target}",
                          elem_id=f"condition-{self.cond.name}-{target}")
                for target, low, high, step, mean in self.ranges()]

    def value(self, *values: Any) -> Any:
        return dict(zip(self.cond.targets, values))  # the conditioner checks each (a finite number)
