"""Mask generators for inpainting: which pixels of an image the model gets to see.

Every mask is a float32 tensor of shape ``(B, 1, H, W)`` holding exactly 0.0 or 1.0, where
**1 = observed** and 0 = missing (to be generated). Random masks draw all their randomness from
the ``torch.Generator`` they are given (same seed, same masks) and are made on that generator's
device; fixed masks use a generator, if given, only for its device (CPU otherwise). Sizes are
generic: any ``H, W >= 2``.

Naming convention: a mask's name says what is **missing**
----------------------------------------------------------
``bottom-half`` hides the bottom half (the top half is observed), ``centre`` hides a centred
rectangle, ``random-rect`` hides a random rectangle, ``dropout:P`` hides each pixel with
probability P. The one exception is ``quadrants:K``, which counts the **observed** quadrants, as
Pyro's ``num_quadrant_inputs`` and Sohn, Lee & Yan (2015) do.

Quadrants: Pyro's layout
------------------------
The image splits at row ``H // 2`` and column ``W // 2`` (for odd sizes the bottom and right parts
are the larger ones, as in Pyro). With K observed quadrants:

===  ======================================  =================================
K    observed                                missing
===  ======================================  =================================
1    bottom-left                             top-left, top-right, bottom-right
2    top-left, bottom-left (the left half)   top-right, bottom-right
3    top-left, top-right, bottom-left        bottom-right
===  ======================================  =================================

Source: the ``MaskImages`` transform in ``examples/cvae/mnist.py`` of pyro-ppl/pyro (read at
commit ff6ae1c9, lines 57-70). It builds the target ``out`` (the missing part) by writing -1 over
the pixels that are *inputs*, then hides the input wherever ``out != -1``::

    out[h // 2 :, : w // 2] = self.mask_with    # every K: bottom-left is an input
    if self.num == 2:
        out[:, : w // 2] = self.mask_with       # K = 2: the whole left half
    if self.num == 3:
        out[: h // 2, :] = self.mask_with       # K = 3: bottom-left plus the whole top half
    ...
    inp[out != -1] = self.mask_with

Every user mistake raises :class:`condgen.ConditionError` with a one-line message naming the bad
value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from condgen import ConditionError

from .names import HALVES, MASK_KINDS  # defined without torch, for the command's --help

Half = Literal["top", "bottom", "left", "right"]

_ALLOWED_SPECS = (
    "quadrants:K (K = 1, 2 or 3 observed quadrants), top-half, bottom-half, left-half, right-half "
    "(the missing half), centre[:F] or center[:F], random-rect[:MIN-MAX], dropout[:P]"
)
# Which quadrants are observed for K observed quadrants (Pyro's layout, see the module docstring).
_OBSERVED_QUADRANTS = {
    1: ("bottom-left",),
    2: ("top-left", "bottom-left"),
    3: ("top-left", "top-right", "bottom-left"),
}
_QUADRANT_SPECS = "quadrants:1, quadrants:2 or quadrants:3"
_DEFAULTS = {"fraction": 0.5, "p": 0.5, "min_fraction": 0.25, "max_fraction": 0.75}


# -- checks ---------------------------------------------------------------------------------
def _check_size(batch: int, height: int, width: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConditionError(f"mask batch size {batch!r} is not allowed; allowed are integers >= 1")
    for what, n in (("height", height), ("width", width)):
        # Two rows and columns at least, so every mask can both observe and hide something.
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ConditionError(f"mask {what} {n!r} is not allowed; allowed are integers >= 2")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k not in _OBSERVED_QUADRANTS:
        raise ConditionError(f"quadrants K = {k!r} is not allowed; allowed are 1, 2 or 3 observed quadrants")


def _check_unit(value: float, what: str, meaning: str) -> None:
    """``value`` must be a number strictly between 0 and 1 (NaN fails the comparison)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConditionError(f"{what} = {value!r} is not allowed; allowed are numbers strictly between 0 and 1 ({meaning})")


def _check_rect(min_fraction: float, max_fraction: float) -> None:
    meaning = "the missing share of each side"
    _check_unit(min_fraction, "random-rect min_fraction", meaning)
    _check_unit(max_fraction, "random-rect max_fraction", meaning)
    if min_fraction > max_fraction:
        raise ConditionError(
            f"random-rect min_fraction = {min_fraction!r} is above max_fraction = {max_fraction!r}; "
            "allowed is 0 < min_fraction <= max_fraction < 1"
        )


def _require_generator(generator: object, what: str) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{what} masks are random and need a torch.Generator, got {type(generator).__name__}")
    return generator


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _side(fraction: float, n: int) -> int:
    """``fraction * n`` rounded half up, kept within 1 .. n-1 so something is hidden and something seen."""
    return min(max(math.floor(fraction * n + 0.5), 1), n - 1)


def _batched(mask: Tensor, batch: int) -> Tensor:
    """One ``(H, W)`` mask -> ``(batch, 1, H, W)`` float32, a real copy so callers may edit it in place."""
    return mask.float().expand(batch, 1, *mask.shape).clone()


# -- fixed masks ----------------------------------------------------------------------------
def quadrant_mask(batch: int, height: int, width: int, k: int, generator: torch.Generator | None = None) -> Tensor:
    """``k`` observed quadrants in Pyro's layout (see the module docstring) -> ``(batch, 1, H, W)``.

    1: bottom-left observed; 2: left half; 3: all but the bottom-right quadrant.
    """
    _check_k(k)
    _check_size(batch, height, width)
    h, w = height // 2, width // 2
    blocks = {
        "top-left": (slice(None, h), slice(None, w)),
        "top-right": (slice(None, h), slice(w, None)),
        "bottom-left": (slice(h, None), slice(None, w)),
        "bottom-right": (slice(h, None), slice(w, None)),
    }
    mask = torch.zeros(height, width, device=_device(generator))
    for name in _OBSERVED_QUADRANTS[k]:
        mask[blocks[name]] = 1.0
    return _batched(mask, batch)


def half_mask(batch: int, height: int, width: int, missing: Half, generator: torch.Generator | None = None) -> Tensor:
    """The ``missing`` half (top, bottom, left or right) hidden, the other half observed -> ``(batch, 1, H, W)``.

    The split is at row ``H // 2`` / column ``W // 2``, as for the quadrants.
    """
    if missing not in HALVES:
        raise ConditionError(f"half {missing!r} is not allowed; allowed are the missing half: top, bottom, left or right")
    _check_size(batch, height, width)
    h, w = height // 2, width // 2
    hidden = {
        "top": (slice(None, h), slice(None)),
        "bottom": (slice(h, None), slice(None)),
        "left": (slice(None), slice(None, w)),
        "right": (slice(None), slice(w, None)),
    }[missing]
    mask = torch.ones(height, width, device=_device(generator))
    mask[hidden] = 0.0
    return _batched(mask, batch)


def centre_mask(
    batch: int, height: int, width: int, fraction: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """A centred rectangle hidden, ``fraction`` of each side (rounded) -> ``(batch, 1, H, W)``.

    With 28x28 and the default 0.5, rows and columns 7..20 are missing: 196 of 784 pixels.
    """
    _check_unit(fraction, "centre fraction", "the missing share of each side")
    _check_size(batch, height, width)
    ch, cw = _side(fraction, height), _side(fraction, width)
    top, left = (height - ch) // 2, (width - cw) // 2
    mask = torch.ones(height, width, device=_device(generator))
    mask[top : top + ch, left : left + cw] = 0.0
    return _batched(mask, batch)


# -- random masks ---------------------------------------------------------------------------
def random_rect_mask(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    min_fraction: float = 0.25,
    max_fraction: float = 0.75,
) -> Tensor:
    """One random rectangle hidden per item -> ``(batch, 1, H, W)``.

    Each side is a uniform fraction in ``[min_fraction, max_fraction]`` of the image side (drawn
    separately for height and width, rounded, within 1 .. side-1), at a uniform position.
    """
    _check_rect(min_fraction, max_fraction)
    _check_size(batch, height, width)
    gen = _require_generator(generator, "random-rect")
    device = gen.device
    u = torch.rand(4, batch, generator=gen, device=device)  # (4, B): height and width shares, then positions
    shares = min_fraction + (max_fraction - min_fraction) * u[:2]
    rect_h = torch.floor(shares[0] * height + 0.5).clamp(1, height - 1).long()  # (B,)
    rect_w = torch.floor(shares[1] * width + 0.5).clamp(1, width - 1).long()
    # u < 1, so the corner lands in 0 .. side - rect side: the rectangle always fits.
    top = torch.floor(u[2] * (height - rect_h + 1)).long()
    left = torch.floor(u[3] * (width - rect_w + 1)).long()
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= top[:, None]) & (rows < (top + rect_h)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + rect_w)[:, None])  # (B, W)
    missing = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
    return (~missing).float().unsqueeze(1)


def dropout_mask(batch: int, height: int, width: int, p: float, generator: torch.Generator) -> Tensor:
    """Each pixel independently missing with probability ``p`` -> ``(batch, 1, H, W)``."""
    _check_unit(p, "dropout p", "the probability of a pixel being missing")
    _check_size(batch, height, width)
    gen = _require_generator(generator, "dropout")
    u = torch.rand(batch, 1, height, width, generator=gen, device=gen.device)
    return (u >= p).float()  # missing when u < p, which has probability p


# -- a user's own mask ----------------------------------------------------------------------
def user_mask(
    mask: Tensor, height: Optional[int] = None, width: Optional[int] = None, batch: Optional[int] = None
) -> Tensor:
    """Validate a user's mask ``(H, W)``, ``(1, H, W)`` or ``(B, 1, H, W)`` -> float32 ``(B, 1, H, W)``.

    Values must be exactly 0 (missing) or 1 (observed), bool or numeric; ``height``/``width``, if
    given, are the image size it must fit; ``batch``, if given, repeats a single mask to that many
    items (a batch of masks must already have that many). Every item must observe at least one
    pixel and hide at least one, or there is nothing to condition on or nothing to generate.
    The result stays on the mask's own device.
    """
    if not isinstance(mask, Tensor):
        raise ConditionError(f"mask of type {type(mask).__name__} is not allowed; allowed is a torch.Tensor")
    shape = tuple(mask.shape)
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3 and shape[0] == 1:
        mask = mask[None]
    elif not (mask.dim() == 4 and shape[1] == 1):
        raise ConditionError(f"mask of shape {shape} is not allowed; allowed shapes are (H, W), (1, H, W) or (B, 1, H, W)")
    b, _, h, w = mask.shape
    if (height is not None and h != height) or (width is not None and w != width):
        want = f"{height if height is not None else 'H'}x{width if width is not None else 'W'}"
        raise ConditionError(f"mask of size {h}x{w} is not allowed; allowed is the image size {want}")
    if mask.is_complex():
        raise ConditionError(f"mask of dtype {mask.dtype} is not allowed; allowed are 0/1 values (bool, int or float)")
    m = mask.float()
    bad = (m != 0) & (m != 1)  # NaN counts as bad too
    if bad.any():
        raise ConditionError(f"mask value {m[bad][0].item():g} is not allowed; allowed are 0 (missing) and 1 (observed)")
    observed = m.flatten(1).sum(1)  # (B,)
    empty_or_full = ((h * w, "observes every pixel (nothing to generate)"), (0, "observes no pixel (nothing to condition on)"))
    for count, what in empty_or_full:
        hits = (observed == count).nonzero()
        if len(hits):
            raise ConditionError(
                f"mask item {hits[0].item()} {what}; "
                "allowed are masks with at least one observed (1) and one missing (0) pixel"
            )
    if batch is not None and b != batch:
        if b != 1:
            raise ConditionError(f"a batch of {b} masks is not allowed for {batch} images; allowed are 1 or {batch} masks")
        m = m.expand(batch, 1, h, w)
    return m.contiguous()


def check_spec_fits(spec: MaskSpec | str, height: int, width: int, draws: int = 64) -> None:
    """ConditionError where a mask spec, on images of ``height`` x ``width``, hides no pixel or observes none in
    every one of ``draws`` masks drawn with a fixed seed (``dropout:1e-300``, ``dropout:0.9999999``): such a mask
    gives nothing to generate or nothing to condition on, as a mask file would that is refused the same way."""
    spec = spec if isinstance(spec, MaskSpec) else parse_mask_spec(spec)
    observed = spec.sample(draws, height, width, torch.Generator().manual_seed(0)).flatten(1).sum(1)
    for count, what in ((height * width, "hides no pixel (nothing to generate)"),
                        (0, "observes no pixel (nothing to condition on)")):
        if bool((observed == count).all()):
            raise ConditionError(f"mask {str(spec)!r} {what} of a {height}x{width} image; allowed are masks with at "
                                 "least one observed and one missing pixel")


# -- specs and mixes ------------------------------------------------------------------------
# The parameters each kind takes; every other parameter must stay None.
_PARAMS = {
    "quadrants": ("k",),
    "centre": ("fraction",),
    "random-rect": ("min_fraction", "max_fraction"),
    "dropout": ("p",),
}


@dataclass(frozen=True)
class MaskSpec:
    """One kind of mask with its parameters, e.g. ``MaskSpec("quadrants", k=2)``; see :func:`parse_mask_spec`.

    ``k``: observed quadrants (quadrants, required); ``fraction``: missing share of each side
    (centre, default 0.5); ``min_fraction``/``max_fraction``: bounds on the missing share of each
    side (random-rect, default 0.25 and 0.75); ``p``: probability of a pixel missing (dropout,
    default 0.5). Half kinds take nothing. ``str(spec)`` is its canonical text.
    """

    kind: str
    k: Optional[int] = None
    fraction: Optional[float] = None
    p: Optional[float] = None
    min_fraction: Optional[float] = None
    max_fraction: Optional[float] = None

    def __post_init__(self) -> None:
        kind = "centre" if self.kind == "center" else self.kind
        if kind not in MASK_KINDS:
            raise ConditionError(f"unknown mask kind {self.kind!r}; allowed are {', '.join(MASK_KINDS)}")
        object.__setattr__(self, "kind", kind)  # frozen: normalise the alias in place
        takes = _PARAMS.get(kind, ())
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if f.name not in takes and value is not None:
                allowed = ", ".join(takes) if takes else "no parameter"
                raise ConditionError(f"mask {kind!r} does not take {f.name} = {value!r}; allowed is {allowed}")
            if f.name in takes and value is None and f.name in _DEFAULTS:
                object.__setattr__(self, f.name, _DEFAULTS[f.name])
        if kind == "quadrants":
            if self.k is None:
                raise ConditionError("mask 'quadrants' needs K, the number of observed quadrants; allowed are 1, 2 or 3")
            _check_k(self.k)
        elif kind == "centre":
            _check_unit(self.fraction, "centre fraction", "the missing share of each side")
        elif kind == "random-rect":
            _check_rect(self.min_fraction, self.max_fraction)
        elif kind == "dropout":
            _check_unit(self.p, "dropout p", "the probability of a pixel being missing")

    def __str__(self) -> str:
        if self.kind == "quadrants":
            return f"quadrants:{self.k}"
        if self.kind == "centre":
            return f"centre:{self.fraction:g}"
        if self.kind == "random-rect":
            return f"random-rect:{self.min_fraction:g}-{self.max_fraction:g}"
        if self.kind == "dropout":
            return f"dropout:{self.p:g}"
        return self.kind

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
        """Masks of this kind ``(batch, 1, H, W)``; random kinds need ``generator``."""
        if self.kind == "quadrants":
            return quadrant_mask(batch, height, width, self.k, generator)
        if self.kind.endswith("-half"):
            return half_mask(batch, height, width, self.kind.removesuffix("-half"), generator)  # type: ignore[arg-type]
        if self.kind == "centre":
            return centre_mask(batch, height, width, self.fraction, generator)
        if self.kind == "random-rect":
            return random_rect_mask(batch, height, width, generator, self.min_fraction, self.max_fraction)
        return dropout_mask(batch, height, width, self.p, generator)


def _number(arg: str, cast: type, hint: str) -> int | float:
    try:
        return cast(arg)
    except ValueError:
        raise ConditionError(f"{arg!r} is not a {'whole ' if cast is int else ''}number; allowed are {hint}") from None


def _parse(text: str) -> MaskSpec:
    name, colon, arg = (part.strip() for part in text.strip().lower().partition(":"))
    if name == "center":
        name = "centre"
    if name not in MASK_KINDS:
        raise ConditionError(f"unknown mask name {name!r}; allowed are {_ALLOWED_SPECS}")
    if colon and not arg:
        raise ConditionError(f"nothing after ':'; allowed are {_ALLOWED_SPECS}")
    if name.endswith("-half"):
        if colon:
            missing = name.replace("-", " ")
            raise ConditionError(f"{name} takes no value, got {arg!r}; allowed is plain {name} (the {missing} is missing)")
        return MaskSpec(name)
    if name == "quadrants":
        if not colon:
            raise ConditionError(f"quadrants needs K, the number of observed quadrants; allowed are {_QUADRANT_SPECS}")
        return MaskSpec(name, k=_number(arg, int, _QUADRANT_SPECS))
    if not colon:
        return MaskSpec(name)
    if name == "centre":
        return MaskSpec(name, fraction=_number(arg, float, "centre:F with 0 < F < 1, e.g. centre:0.4"))
    if name == "dropout":
        return MaskSpec(name, p=_number(arg, float, "dropout:P with 0 < P < 1, e.g. dropout:0.5"))
    hint = "random-rect:MIN-MAX with 0 < MIN <= MAX < 1, e.g. random-rect:0.25-0.75"
    low, dash, high = arg.partition("-")
    if not dash:
        raise ConditionError(f"{arg!r} is not a MIN-MAX range; allowed is {hint}")
    return MaskSpec(name, min_fraction=_number(low, float, hint), max_fraction=_number(high, float, hint))


def parse_mask_spec(text: str) -> MaskSpec:
    """Parse ``quadrants:2``, ``bottom-half``, ``centre``/``center``, ``centre:0.4``, ``random-rect``,
    ``random-rect:0.2-0.6`` or ``dropout:0.5`` (case-insensitive) into a :class:`MaskSpec`.

    Half names say which half is **missing**; ``quadrants:K`` counts the **observed** quadrants.
    """
    if not isinstance(text, str):
        raise ConditionError(f"mask spec {text!r} is not allowed; allowed are strings such as {_ALLOWED_SPECS}")
    try:
        return _parse(text)
    except ConditionError as err:
        # One line that names the whole spec the user wrote as well as the bad part.
        raise ConditionError(f"mask {text!r}: {err}") from None


@dataclass
class MaskMix:
    """A weighted mix of mask specs; every item of a batch gets a fresh mask of a kind drawn with the weights.

    ``specs`` are :class:`MaskSpec` or their text (``"quadrants:2"``); ``weights`` (one per spec,
    >= 0, not all 0, relative) default to equal. E.g. ``MaskMix(["quadrants:1", "centre"], [3, 1])``
    gives quadrant masks to about 3/4 of the items.
    """

    specs: Sequence[Union[MaskSpec, str]]
    weights: Optional[Sequence[float]] = None

    def __post_init__(self) -> None:
        if isinstance(self.specs, (str, MaskSpec)):
            self.specs = [self.specs]
        self.specs = [s if isinstance(s, MaskSpec) else parse_mask_spec(s) for s in self.specs]
        if not self.specs:
            raise ConditionError("mask mix has no specs; allowed is a list of one or more, e.g. ['quadrants:2', 'centre']")
        weights = [1.0] * len(self.specs) if self.weights is None else list(self.weights)
        if len(weights) != len(self.specs):
            raise ConditionError(
                f"mask mix has {len(weights)} weights for {len(self.specs)} specs; allowed is one weight per spec"
            )
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w >= 0):
                raise ConditionError(f"mask mix weight {w!r} is not allowed; allowed are finite numbers >= 0, not all 0")
        if sum(weights) <= 0:
            raise ConditionError(f"mask mix weights {weights} are all 0; allowed are numbers >= 0 with a positive sum")
        self.weights = [float(w) for w in weights]

    def draw_kinds(self, batch: int, generator: torch.Generator) -> Tensor:
        """Index into ``specs`` for each item, drawn with the weights -> ``(batch,)`` int64."""
        gen = _require_generator(generator, "mixed")
        weights = torch.tensor(self.weights, device=gen.device)
        return torch.multinomial(weights, batch, replacement=True, generator=gen)

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator) -> Tensor:
        """A fresh mask per item from the mix -> ``(batch, 1, H, W)``; first draws the kinds, then each kind's masks."""
        _check_size(batch, height, width)
        kinds = self.draw_kinds(batch, generator)
        masks = torch.empty(batch, 1, height, width, device=generator.device)
        for i, spec in enumerate(self.specs):  # in spec order, so a seed fixes the whole batch
            items = (kinds == i).nonzero().squeeze(1)
            if len(items):
                masks[items] = spec.sample(len(items), height, width, generator)
        return masks
