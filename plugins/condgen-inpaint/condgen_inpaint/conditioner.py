"""The ``inpaint`` conditioner: the observed part of an image and its mask.

A condition is one tensor ``(C + 1, H, W)``: the image's observed pixels ``x * m`` (missing ones
zero) in the first C channels and the mask ``m`` (1 = observed) in the last, so the model can
tell a missing pixel from a black one. The condition gives the observed pixels of x
(:meth:`InpaintConditioner.given_part`), so the engine scores only the missing ones. During
training every batch gets fresh masks from a configurable, seeded mix (:class:`MaskMix`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

import condgen
from condgen import ConditionError, Conditioner, ConditionerConfig

from .masks import MaskMix, check_spec_fits, parse_mask_spec, user_mask

#: The default training mix, each mask equally often: the paper's quadrant task (1, 2 or 3 observed
#: quadrants) and the masks users draw: the top, bottom or left half missing (``quadrants:2`` is the
#: right half missing), a centred square and a random rectangle.
DEFAULT_MASKS = ["quadrants:1", "quadrants:2", "quadrants:3", "top-half", "bottom-half", "left-half", "centre",
                 "random-rect"]
#: The default widths of the mlp and conv embeddings.
DEFAULT_HIDDEN, DEFAULT_EMBED_DIM = 512, 256
#: Rows of a run's samples.png: each of these masks on a few test images.
EXAMPLE_MASKS = ("quadrants:1", "quadrants:2", "quadrants:3", "bottom-half")
EXAMPLE_IMAGES = 3
#: How a missing pixel looks in a condition's picture: mid-grey, neither ink nor background.
MISSING_GREY = 0.5


class InpaintConfig(ConditionerConfig):
    field: str = Field("image", description="data field of the image to mask")
    masks: list[str] = Field(default_factory=lambda: list(DEFAULT_MASKS),
                             description="training masks, drawn fresh per item (quadrants:K, top-, bottom-, left- or "
                             "right-half, centre, random-rect, dropout); the default covers all but dropout")
    weights: Optional[list[float]] = Field(None, description="relative weight of each training mask, one per mask "
                                     "(default equal)")
    embedding: Literal["mlp", "conv", "spatial"] = Field(
        "mlp", description="mlp, a small convolutional encoder (conv), or spatial: the observed image and its mask "
        "themselves as feature maps, which a conv architecture joins at every resolution")
    hidden: int = Field(DEFAULT_HIDDEN, ge=1, description="width of the embedding's hidden layer (mlp) or of its "
                        "last layer (conv); not with spatial")
    embed_dim: int = Field(DEFAULT_EMBED_DIM, ge=1, description="width of the embedding (mlp, conv); not with "
                           "spatial, whose width is the image's channels + 1")

    @model_validator(mode="after")
    def _spatial_has_no_widths(self) -> "InpaintConfig":
        # stored configs hold every default, so only a width other than its default is refused
        given = [f"{f} = {getattr(self, f)}" for f, default in (("hidden", DEFAULT_HIDDEN),
                                                                ("embed_dim", DEFAULT_EMBED_DIM))
                 if getattr(self, f) != default]
        if self.embedding == "spatial" and given:
            raise ValueError(f"{' and '.join(given)} apply to embedding mlp or conv; a spatial embedding is the "
                             "condition itself (the image's channels + 1 maps): remove them")
        return self

    @field_validator("masks")
    @classmethod
    def _known_masks(cls, v: list[str]) -> list[str]:
        for spec in v:
            parse_mask_spec(spec)  # ConditionError is a ValueError: pydantic names the field
        return v


class ConvEmbedding(nn.Module):
    """``(B, C + 1, H, W)`` -> ``(B, E)``: two stride-2 convolutions, then a linear layer."""

    def __init__(self, channels: int, height: int, width: int, hidden: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.net(torch.zeros(1, channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, c: Tensor) -> Tensor:
        return self.head(self.net(c))


class InpaintConditioner(Conditioner):
    """Condition on an image's observed pixels and its mask; the missing pixels are generated."""

    name = "inpaint"
    Config = InpaintConfig
    config: InpaintConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.mix = MaskMix(self.config.masks, self.config.weights)
        self.image_shape: tuple[int, int, int] | None = None  # (C, H, W), learnt by fit()

    # -- shapes and state -------------------------------------------------------------------
    def _shape(self) -> tuple[int, int, int]:
        if self.image_shape is None:
            raise ConditionError("the inpaint conditioner has not seen its data yet (fit or load it first)")
        return self.image_shape

    @property
    def condition_shape(self) -> tuple[int, ...]:
        c, h, w = self._shape()
        return (c + 1, h, w)

    def fit(self, train: Mapping[str, Tensor]) -> None:
        images = self.require_field(train, self.config.field)
        if images.dim() != 4:
            raise ConditionError(
                f"inpaint needs images (N, C, H, W) in data field {self.config.field!r}, got shape {tuple(images.shape)}"
            )
        self.image_shape = tuple(int(s) for s in images.shape[1:])  # type: ignore[assignment]
        for spec in self.mix.specs:  # a training mask that hides nothing (or all) on these images is a mistake
            check_spec_fits(spec, *self.image_shape[1:])

    def state(self) -> dict[str, Any]:
        return {"image_shape": list(self._shape())}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.image_shape = tuple(state["image_shape"])  # type: ignore[assignment]

    # -- conditions -------------------------------------------------------------------------
    def condition(self, images: Tensor, masks: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] and masks ``(B, 1, H, W)`` (1 = observed) -> conditions ``(B, C+1, H, W)``."""
        return torch.cat([images * masks, masks], dim=1)

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        images = self.require_field(batch, self.config.field)
        if generator is None:
            generator = torch.Generator(device=images.device).manual_seed(0)
        _, _, h, w = images.shape
        return self.condition(images, self.mix.sample(images.shape[0], h, w, generator).to(images.dtype))

    def check_condition(self, c: Tensor) -> Tensor:
        ch, h, w = self.condition_shape
        if c.dim() != 4 or tuple(c.shape[1:]) != (ch, h, w) or not c.is_floating_point():
            raise ConditionError(
                f"inpaint conditions must be float tensors (B, {ch}, {h}, {w}): the observed image and its mask; "
                f"got a {str(c.dtype).removeprefix('torch.')} tensor of shape {tuple(c.shape)}"
            )
        mask = c[:, -1:]
        if not torch.all((mask == 0) | (mask == 1)):
            raise ConditionError("an inpaint condition's mask channel must hold only 0 (missing) and 1 (observed)")
        observed = c[:, :-1]
        if not torch.all((observed >= 0) & (observed <= 1)):
            raise ConditionError("an inpaint condition's image must hold values in [0, 1]")
        return torch.cat([observed * mask, mask], dim=1).float()

    def parse_condition(self, text: str) -> Tensor:
        raise ConditionError(
            f"{self.name}={text!r}: an inpaint condition is an image and a mask; give them with "
            "`condgen inpaint RUN_DIR --image FILE --mask FILE_OR_NAME`, or from Python as "
            f"{{{self.name!r}: {{'image': tensor, 'mask': tensor or 'quadrants:2'}}}}"
        )

    def conditions_from_value(self, value: Any) -> Tensor:
        """``{"image": x, "mask": m}`` (or a pair ``(x, m)``), with x ``(H, W)``, ``(C, H, W)`` or
        ``(K, C, H, W)`` in [0, 1] and m a mask of the same forms or a mask name (``"quadrants:2"``);
        or a ready condition tensor ``(K, C+1, H, W)``."""
        if isinstance(value, Tensor) and value.dim() == 4:
            return self.check_condition(condgen.tensor_from_value(value, f"condition {self.name!r}"))
        if isinstance(value, Mapping) and set(value) == {"image", "mask"}:
            image, mask = value["image"], value["mask"]
        elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
            image, mask = value
        else:
            raise ConditionError(
                "an inpaint condition is {'image': image, 'mask': mask or a mask name}; "
                f"got {type(value).__name__}"
            )
        return self.condition(*self.image_and_mask(image, mask))

    def image_and_mask(self, image: Any, mask: Any) -> tuple[Tensor, Tensor]:
        """Validate an image and a mask (or mask name) from a user: ``(K, C, H, W)`` and ``(K, 1, H, W)``."""
        c, h, w = self._shape()
        # the core's rules for a Python value (None, text, complex, ragged, meta, empty: ConditionError)
        x = condgen.tensor_from_value(image, "the image").to(torch.float32)
        while x.dim() < 4:
            x = x.unsqueeze(0)
        if tuple(x.shape[1:]) != (c, h, w):
            raise ConditionError(f"the image has shape {tuple(x.shape)}; this model needs (H, W) = ({h}, {w}) "
                                 f"with {c} channel(s)")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ConditionError(f"the image's values must lie in [0, 1]; they range from {float(x.min()):g} "
                                 f"to {float(x.max()):g}")
        if isinstance(mask, str):
            spec = parse_mask_spec(mask)
            check_spec_fits(spec, h, w)
            try:  # each drawn mask held to the rule of a mask file: one observed and one missing pixel at least
                m = user_mask(spec.sample(x.shape[0], h, w, torch.Generator().manual_seed(0)), h, w)
            except ConditionError as exc:
                raise ConditionError(f"mask {mask!r}: {exc}") from None
        else:
            m = user_mask(condgen.tensor_from_value(mask, "the mask", bools=True), h, w)
            if m.shape[0] == 1:
                m = m.expand(x.shape[0], 1, h, w)
            elif m.shape[0] != x.shape[0]:
                raise ConditionError(f"{m.shape[0]} masks for {x.shape[0]} images; give one mask or one per image")
        return x, m.to(x.device, x.dtype)

    def sampling_command(self, run_dir: str, conditions: str) -> str:
        """Its runs complete images: ``condgen inpaint``, not ``condgen sample``."""
        return (f"condgen inpaint {run_dir} --image FILE --mask quadrants:2" + (f" {conditions}" if conditions else "")
                + " --out completions.png")

    # -- what the condition gives ---------------------------------------------------------------
    def given_part(self, c: Tensor) -> Tensor:
        channels = c.shape[1] - 1
        return c[:, -1:].expand(c.shape[0], channels, *c.shape[2:])

    def given_values(self, c: Tensor) -> Tensor:
        return c[:, :-1]

    # -- pictures -----------------------------------------------------------------------------
    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor:
        images = self.require_field(test, self.config.field)[:EXAMPLE_IMAGES]
        _, _, h, w = images.shape
        rows = []
        for spec in EXAMPLE_MASKS:
            masks = parse_mask_spec(spec).sample(images.shape[0], h, w, generator).to(images.device, images.dtype)
            rows.append(self.condition(images, masks))
        return torch.cat(rows)

    def describe_condition(self, c: Tensor) -> str:
        return f"{float(c[-1].mean()):.0%} observed"

    def condition_picture(self, c: Tensor) -> Tensor:
        observed, mask = c[:-1], c[-1:]
        return observed * mask + MISSING_GREY * (1 - mask)

    # -- embedding ------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        if self.config.embedding == "spatial":
            return self.condition_shape[0]
        return self.config.embed_dim

    @property
    def spatial_size(self) -> tuple[int, int] | None:
        return self.condition_shape[1:] if self.config.embedding == "spatial" else None

    def build_embedding(self) -> nn.Module:
        ch, h, w = self.condition_shape
        if self.config.embedding == "spatial":  # (B, C + 1, H, W) as they are: the architecture learns from them
            return nn.Identity()
        hidden, width = self.config.hidden, self.config.embed_dim
        if self.config.embedding == "conv":
            return ConvEmbedding(ch, h, w, hidden, width)
        return nn.Sequential(nn.Flatten(), nn.Linear(ch * h * w, hidden), nn.ReLU(), nn.Linear(hidden, width))
