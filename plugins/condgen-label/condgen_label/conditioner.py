"""The ``label`` conditioner: a one-hot (or learned) embedding of an integer class label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Optional

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

import condgen
from condgen import EVAL_SEED, ConditionError, Conditioner, ConditionerConfig, iter_batches, seeded_generator


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
    """Condition on an integer class label in ``0 .. num_classes - 1``; a condition is ``(B,)`` int64."""

    name = "label"
    Config = LabelConfig
    config: LabelConfig

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def allowed(self) -> str:
        return f"integers 0..{self.config.num_classes - 1}"

    # -- data ---------------------------------------------------------------------------
    def fit(self, train: Mapping[str, Tensor]) -> None:
        labels = self.require_field(train, self.config.field)
        self.check_condition(labels, what=f"training data field {self.config.field!r}")

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        return self.require_field(batch, self.config.field).long()

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
        if text.strip().lower() == "all":
            return torch.arange(k)
        values = []
        for part in text.split(","):
            part = part.strip()
            try:
                value = int(part)
            except ValueError:
                raise ConditionError(
                    f"label={text!r}: {part!r} is not a class number; allowed are {self.allowed}, "
                    "a comma list such as 0,1,2, or all"
                ) from None
            if not 0 <= value < k:
                raise ConditionError(f"label={text!r}: class {value} is out of range; allowed are {self.allowed}")
            values.append(value)
        return torch.tensor(values, dtype=torch.long)

    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor:
        return torch.arange(self.config.num_classes)

    def describe_condition(self, c: Tensor) -> str:
        return str(int(c))

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

    # -- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, run: condgen.Run, test: Mapping[str, Tensor]) -> dict[str, float]:
        """``elbo_accuracy``: how often the label with the best ELBO is the true one (the model as a classifier).

        High means the model really uses the label; a model that ignores it scores 1/num_classes.
        """
        correct, n = 0, 0
        for start, batch in iter_batches(test, 1000):
            conds = run.conditions_from_batch(batch, seeded_generator(run.device, EVAL_SEED))
            truth = conds[self.name]
            scores = []
            for cls in range(self.config.num_classes):
                # the same noise for every class, so the classes differ only by the label
                gen = seeded_generator(run.device, EVAL_SEED + start)
                conds[self.name] = torch.full_like(conds[self.name], cls)
                scores.append(run.terms(batch, conds, gen, objective=False)["neg_elbo"])
            correct += int((torch.stack(scores, 1).argmin(1) == truth).sum())
            n += truth.shape[0]
        return {"elbo_accuracy": correct / max(n, 1)}
