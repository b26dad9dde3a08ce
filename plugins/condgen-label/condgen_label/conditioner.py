"""The ``label`` conditioner: a one-hot (or learned) embedding of an integer class label, which a
user may also ask for by the class's name where the data names its classes."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

import condgen
from condgen import EVAL_SEED, ConditionError, Conditioner, ConditionerConfig, iter_batches, seeded_generator


#: With more class names than this, an unknown name's error offers the closest names instead of all of them.
LIST_ALL_NAMES = 20


class LabelConfig(ConditionerConfig):
    num_classes: int = Field(10, ge=2, description="number of classes; labels are 0 .. num_classes-1")
    field: str = Field("label", description="data field that holds the integer label")
    embedding: Literal["onehot", "learned"] = Field("onehot", description="onehot (the seed) or learned")
    embed_dim: Optional[int] = Field(None, ge=1, description="width of a learned embedding (default 16)")

    @model_validator(mode="after")
    def _width_only_when_learned(self) -> "LabelConfig":
        if self.embedding == "onehot" and self.embed_dim is not None and self.embed_dim != self.num_classes:
            raise ValueError(
                f"embed_dim = {self.embed_dim} does not apply to embedding 'onehot', whose width is "
                f"num_classes ({self.num_classes}); use embedding 'learned' for another width"
            )
        return self


class OneHot(nn.Module):
    """Class indices ``(B,)`` int64 -> one-hot ``(B, num_classes)`` float32."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, c: Tensor) -> Tensor:
        # the same values as F.one_hot(c).float(), which on the CPU checks the labels' range with two
        # reductions read back by the host every call; scatter_ checks it inside its kernel
        return torch.zeros(c.shape[0], self.num_classes, dtype=torch.float32, device=c.device).scatter_(
            1, c.unsqueeze(1), 1.0)


class LabelConditioner(Conditioner):
    """Condition on an integer class label in ``0 .. num_classes - 1``; a condition is ``(B,)`` int64.

    Where the data names its classes (:attr:`condgen.DataSplits.classes` of the field), the
    conditioner keeps the names (:attr:`class_names`, in its checkpoint state): a user may then ask
    for a class by name, in any case (``label=sneaker,Bag``), and pictures label classes by name.
    A condition stays the class index whichever way it is given. ``#N`` is always class number N; a
    number that is also the name of another class (``2`` where class 4 is named ``"2"``) is refused.

    An item whose label is missing (−1, :func:`condgen.is_missing`: an empty cell of an attributes CSV read with
    ``missing=absent``) has no condition (:meth:`missing_values`): the model gives it its absent one, and
    :meth:`condition_from_batch` gives it class 0 in the meantime.
    """

    name = "label"
    Config = LabelConfig
    config: LabelConfig
    #: The name of each class, index ``i`` named ``class_names[i]``; None where the data names none.
    class_names: tuple[str, ...] | None = None
    #: Each class name, stripped and case-folded, to its index (from :attr:`class_names`).
    _by_name: Mapping[str, int] = {}

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def allowed(self) -> str:
        return f"integers 0..{self.config.num_classes - 1}"

    # -- data ---------------------------------------------------------------------------
    def fit(self, train: Mapping[str, Tensor]) -> None:
        labels = self.require_field(train, self.config.field)
        if labels.dim() == 1:  # a missing label is not a class; the toolkit checks it may be absent
            labels = labels[~condgen.is_missing(labels)]
        self.check_condition(labels, what=f"training data field {self.config.field!r}")

    def learn_class_names(self, classes: Mapping[str, Sequence[str]]) -> None:
        names = classes.get(self.config.field)
        if names is not None:
            try:
                self._set_names(names, f"the data's field {self.config.field!r}")
            except ValueError as exc:
                fix = (f"; set {self.conditioner_flag(f'num_classes={len(names)}')} (in a config file, the "
                       f"{self.name} conditioner's num_classes)" if len(names) != self.config.num_classes else "")
                raise ConditionError(f"{exc}{fix}") from None

    def _set_names(self, names: Any, source: str) -> None:
        """Keep ``names`` as :attr:`class_names`; ValueError, naming ``source``, saying what is wrong with them."""
        if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) and n.strip() for n in names)):
            raise ValueError(f"{source} has class names that are not a list of non-empty strings: {names!r}")
        k = self.config.num_classes
        if len(names) != k:
            shown = ", ".join(map(repr, names[:LIST_ALL_NAMES])) + (", ..." if len(names) > LIST_ALL_NAMES else "")
            raise ValueError(f"{source} names {len(names)} classes ({shown}), but conditioner {self.name!r} has "
                             f"num_classes = {k}")
        by_name = {n.strip().casefold(): i for i, n in enumerate(names)}
        if len(by_name) != k:
            raise ValueError(f"{source} gives two classes one name (names match without regard to case): "
                             f"{list(names)!r}")
        self.class_names, self._by_name = tuple(names), by_name

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        labels = self.require_field(batch, self.config.field).long()
        # class 0 stands in for a missing label: a valid condition, which the absent embedding replaces
        return labels.masked_fill(condgen.is_missing(labels), 0) if labels.dim() == 1 else labels

    def missing_values(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{field: (B,) bool}``: the items whose label is missing (−1)."""
        labels = self.require_field(batch, self.config.field)
        return {self.config.field: condgen.is_missing(labels)} if labels.dim() == 1 else {}

    def check_condition(self, c: Tensor, what: str = "label condition") -> Tensor:
        k = self.config.num_classes
        if c.dim() != 1 or c.dtype == torch.bool or c.is_complex():
            raise ConditionError(
                f"{what} must be class indices of shape (B,) with {self.allowed}; "
                f"got a {str(c.dtype).removeprefix('torch.')} tensor of shape {tuple(c.shape)}"
            )
        if c.is_floating_point():
            if not torch.isfinite(c).all() or not torch.equal(c, c.round()):
                bad = c[~torch.isfinite(c) | (c != c.round())][0].item()
                raise ConditionError(f"{what} must hold whole numbers ({self.allowed}); got {bad}")
            if c.numel() and c.abs().max() >= k:  # before .long(), which would wrap 1e30 round to a negative
                raise ConditionError(f"{what} holds class {c[c.abs() >= k][0].item():g}, out of range: allowed are "
                                     f"{self.allowed}")
            c = c.long()
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= k):
            bad = int(c.min()) if int(c.min()) < 0 else int(c.max())
            raise ConditionError(f"{what} holds class {bad}, out of range: allowed are {self.allowed}")
        return c.long()

    def parse_condition(self, text: str) -> Tensor:
        k = self.config.num_classes
        if text.strip().lower() == "all":  # the keyword, even where a class is named "all" (ask for it by number)
            return torch.arange(k)
        if text.strip().casefold() in self._by_name:  # a name with a comma in it
            return torch.tensor([self._class_of(text.strip(), text)], dtype=torch.long)
        return torch.tensor([self._class_of(part.strip(), text) for part in text.split(",")], dtype=torch.long)

    def _class_of(self, part: str, text: str) -> int:
        """The class ``part`` (one item of the comma list ``text``) names: ``#N`` is always class number N; else a
        class name, or a number; a part that is a number in range and the name of another class is refused."""
        if part.startswith("#"):
            return self._numbered(part[1:].strip(), part, text)
        named = self._by_name.get(part.casefold())
        if named is not None:
            try:
                value = int(part)
            except ValueError:
                return named
            if 0 <= value < self.config.num_classes and value != named:
                # folders named 0..11, sorted as text, name class 4 "2": which one a user means cannot be told
                names = self.class_names or ()
                raise ConditionError(
                    f"{self.name}={text!r}: {part!r} is both the number of class {value} ({names[value]!r}) and the "
                    f"name of class {named} ({names[named]!r}); give #{value} for class {value} or #{named} for "
                    f"class {named} (#N is always class number N)")
            return named
        return self._numbered(part, part, text)

    def _numbered(self, number: str, part: str, text: str) -> int:
        """Class number ``number`` (the text of ``part``, an item of ``text``), checked to be in range."""
        try:
            value = int(number)
        except ValueError:
            if part.startswith("#"):
                raise ConditionError(f"{self.name}={text!r}: {part!r} is not a class number; after # give a number "
                                     f"0..{self.config.num_classes - 1}") from None
            if self.class_names is None:
                raise ConditionError(
                    f"{self.name}={text!r}: {part!r} is not a class number; allowed are {self.allowed}, "
                    "a comma list such as 0,1,2, or all"
                ) from None
            raise ConditionError(f"{self.name}={text!r}: {part!r} is not a class; {self._names_for(part)}") from None
        if not 0 <= value < self.config.num_classes:
            raise ConditionError(f"{self.name}={text!r}: class {value} is out of range; allowed are {self.allowed}")
        return value

    def _names_for(self, part: str) -> str:
        """What to offer instead of the unknown name ``part``: every class name, or the closest ones."""
        names, k = self.class_names or (), self.config.num_classes
        forms = f"a class by name (any case) or by number 0..{k - 1}, a comma list of them, or all"
        if len(names) <= LIST_ALL_NAMES:
            return f"the classes are {', '.join(map(repr, names))}; give {forms}"
        close = [repr(names[self._by_name[c]]) for c in difflib.get_close_matches(part.casefold(), list(self._by_name))]
        if close:
            either = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
            return f"did you mean {either}? Give {forms}"
        return (f"no name of the {k} classes ({', '.join(map(repr, names[:5]))}, ...) is close to it; "
                f"give {forms}")

    def conditions_from_value(self, value: Any) -> Tensor:
        """As :meth:`condgen.Conditioner.conditions_from_value`, and also a list that mixes class names (or any
        text of :meth:`parse_condition`) with class numbers: ``["Bag", 3]``, one condition per item."""
        if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
            by_item = super().conditions_from_value  # bound here: a comprehension has no zero-argument super()
            return torch.cat([self.parse_condition(v) if isinstance(v, str) else by_item(v) for v in value])
        return super().conditions_from_value(value)

    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor:
        return torch.arange(self.config.num_classes)

    def describe_condition(self, c: Tensor) -> str:
        """The class's name where the data names its classes, else its number: ``"Sneaker"``, ``"7"``."""
        index = int(c)
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def latent_colour(self, c: Tensor) -> Tensor:
        return c

    # -- embedding ----------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        if self.config.embedding == "onehot":
            return self.config.num_classes
        return self.config.embed_dim or 16

    def build_embedding(self) -> nn.Module:
        if self.config.embedding == "onehot":
            return OneHot(self.config.num_classes)
        return nn.Embedding(self.config.num_classes, self.embed_dim)

    # -- checkpoint ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """``{"classes": [name, ...]}`` where the data names its classes, else ``{}``."""
        return {"classes": list(self.class_names)} if self.class_names is not None else {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        # a checkpoint without names (written before runs kept them, or of data without them): classes by number
        if state.get("classes") is not None:
            self._set_names(state["classes"], "the stored state")

    # -- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, run: condgen.Run, test: Mapping[str, Tensor]) -> dict[str, float]:
        """``elbo_accuracy``: how often the label with the best ELBO is the true one (the model as a classifier).

        High means the model really uses the label; a model that ignores it scores 1/num_classes. Items whose
        label is missing are left out.
        """
        correct, n = 0, 0
        for start, batch in iter_batches(test, 1000):
            conds = run.conditions_from_batch(batch, seeded_generator(run.device, EVAL_SEED))
            truth = conds[self.name]
            absent = run.absent_items(batch)
            known = ~absent.pop(self.name, torch.zeros_like(truth, dtype=torch.bool))
            scores = []
            for cls in range(self.config.num_classes):
                # the same noise for every class, so the classes differ only by the label
                gen = seeded_generator(run.device, EVAL_SEED + start)
                conds[self.name] = torch.full_like(conds[self.name], cls)
                # this label is the candidate for every item, its own missing ones too (left out of the count)
                scores.append(run.terms(batch, conds, gen, objective=False, absent=absent)["neg_elbo"])
            correct += int(((torch.stack(scores, 1).argmin(1) == truth) & known).sum())
            n += int(known.sum())
        return {"elbo_accuracy": correct / max(n, 1)}
