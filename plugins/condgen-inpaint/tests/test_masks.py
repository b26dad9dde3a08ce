"""The inpainting mask generators: shapes, coverage, Pyro's quadrants, randomness, the mix, errors."""

from __future__ import annotations

import pytest
import torch
from condgen_inpaint import (
    MaskMix,
    MaskSpec,
    centre_mask,
    dropout_mask,
    half_mask,
    parse_mask_spec,
    quadrant_mask,
    random_rect_mask,
    user_mask,
)

from condgen import ConditionError

H = W = 28


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_binary_masks(m: torch.Tensor, batch: int, height: int = H, width: int = W) -> None:
    assert m.shape == (batch, 1, height, width)
    assert m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}


def quadrant_values(mask: torch.Tensor) -> dict[str, float]:
    """Each quadrant of an (H, W) mask must be uniform; returns its value."""
    h, w = mask.shape[0] // 2, mask.shape[1] // 2
    blocks = {
        "top-left": mask[:h, :w],
        "top-right": mask[:h, w:],
        "bottom-left": mask[h:, :w],
        "bottom-right": mask[h:, w:],
    }
    for name, block in blocks.items():
        assert block.min() == block.max(), f"{name} is not uniform"
    return {name: block[0, 0].item() for name, block in blocks.items()}


# -- fixed masks ----------------------------------------------------------------------------
# Pyro, examples/cvae/mnist.py, MaskImages: K=1 inputs the bottom-left quadrant, K=2 the left half,
# K=3 the bottom-left quadrant plus the top half.
PYRO_OBSERVED = {
    1: {"bottom-left"},
    2: {"top-left", "bottom-left"},
    3: {"top-left", "top-right", "bottom-left"},
}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quadrants_observe_pyros_quadrants(k):
    m = quadrant_mask(5, H, W, k)
    assert_binary_masks(m, 5)
    assert m.sum(dim=(1, 2, 3)).tolist() == [k * H * W / 4] * 5  # 196, 392, 588 of 784
    values = quadrant_values(m[0, 0])
    assert {name for name, v in values.items() if v == 1.0} == PYRO_OBSERVED[k]
    assert torch.equal(m, quadrant_mask(5, H, W, k, gen(123)))  # deterministic


def test_quadrants_are_generic_in_size_and_split_like_pyro():
    m = quadrant_mask(1, 6, 10, 1)[0, 0]
    assert m.sum() == 3 * 5
    assert m[3:, :5].eq(1).all() and m[:3].eq(0).all() and m[:, 5:].eq(0).all()
    # Odd sizes split at H // 2, W // 2: the bottom and right parts are the larger ones.
    odd = quadrant_mask(1, 5, 7, 1)[0, 0]
    assert odd.sum() == 3 * 3 and odd[2:, :3].eq(1).all()


def test_two_quadrants_are_the_right_half_missing():
    assert torch.equal(quadrant_mask(2, H, W, 2), half_mask(2, H, W, "right"))
    assert torch.equal(parse_mask_spec("quadrants:2").sample(2, H, W), parse_mask_spec("right-half").sample(2, H, W))


@pytest.mark.parametrize(
    "missing, hidden",
    [
        ("top", (slice(None, 14), slice(None))),
        ("bottom", (slice(14, None), slice(None))),
        ("left", (slice(None), slice(None, 14))),
        ("right", (slice(None), slice(14, None))),
    ],
)
def test_half_names_the_missing_half(missing, hidden):
    m = half_mask(3, H, W, missing)
    assert_binary_masks(m, 3)
    assert m[0, 0][hidden].eq(0).all()
    assert m.sum() == 3 * H * W / 2
    assert torch.equal(m, parse_mask_spec(f"{missing}-half").sample(3, H, W))


def test_centre_hides_the_middle_fraction_of_each_side():
    m = centre_mask(2, H, W)
    assert_binary_masks(m, 2)
    assert (m[0, 0] == 0).sum() == 14 * 14
    assert m[0, 0, 7:21, 7:21].eq(0).all()  # rows and columns 7..20
    small = centre_mask(1, H, W, 0.4)[0, 0]
    assert (small == 0).sum() == 11 * 11 and small[8:19, 8:19].eq(0).all()  # round(11.2) = 11
    assert torch.equal(parse_mask_spec("center:0.4").sample(1, H, W)[0, 0], small)


def test_fixed_masks_follow_the_generator_device():
    m = quadrant_mask(1, H, W, 3, torch.Generator(device="cpu"))
    assert m.device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - CPU-only machines
        g = torch.Generator(device="cuda").manual_seed(0)
        assert centre_mask(1, H, W, generator=g).is_cuda and dropout_mask(1, H, W, 0.5, g).is_cuda


# -- random masks ---------------------------------------------------------------------------
def test_dropout_rate_is_close_to_p():
    m = dropout_mask(64, H, W, 0.3, gen())
    assert_binary_masks(m, 64)
    missing_rate = 1 - m.mean().item()  # over 50,176 pixels: standard error 0.002
    assert abs(missing_rate - 0.3) < 0.01
    assert torch.equal(m, dropout_mask(64, H, W, 0.3, gen()))
    assert not torch.equal(m, dropout_mask(64, H, W, 0.3, gen(1)))


def test_random_rects_are_one_rectangle_within_bounds_per_item():
    m = random_rect_mask(200, H, W, gen(), 0.25, 0.75)
    assert_binary_masks(m, 200)
    missing = m[:, 0] == 0  # (B, H, W)
    rows, cols = missing.any(dim=2).sum(1), missing.any(dim=1).sum(1)
    assert torch.equal(missing.sum(dim=(1, 2)), rows * cols)  # a filled rectangle
    assert rows.min() >= 7 and rows.max() <= 21  # round(0.25 * 28) .. round(0.75 * 28)
    assert cols.min() >= 7 and cols.max() <= 21
    assert len({tuple(r.flatten().tolist()) for r in missing[:20]}) == 20  # items differ


def test_random_rects_reproduce_with_the_seed_only():
    a = random_rect_mask(8, H, W, gen(7))
    assert torch.equal(a, random_rect_mask(8, H, W, gen(7)))
    assert not torch.equal(a, random_rect_mask(8, H, W, gen(8)))
    assert torch.equal(a, parse_mask_spec("random-rect").sample(8, H, W, gen(7)))


def test_random_rect_always_observes_and_hides_something():
    m = random_rect_mask(50, 2, 3, gen(), 0.9, 0.95)
    seen = m.sum(dim=(1, 2, 3))
    assert (seen > 0).all() and (seen < 6).all()


# -- a user's own mask ----------------------------------------------------------------------
def test_user_mask_accepts_three_shapes_and_bools():
    own = torch.zeros(H, W)
    own[:10] = 1
    expected = own[None, None]
    assert torch.equal(user_mask(own), expected)
    assert torch.equal(user_mask(own[None].bool(), H, W), expected)
    assert torch.equal(user_mask(own.long()[None, None]), expected)
    repeated = user_mask(own, H, W, batch=4)
    assert_binary_masks(repeated, 4)
    assert torch.equal(repeated[3], expected[0])
    assert_binary_masks(user_mask(torch.stack([own, 1 - own])[:, None], batch=2), 2)


@pytest.mark.parametrize(
    "mask, kwargs, message",
    [
        (torch.full((H, W), 0.5), {}, "mask value 0.5 is not allowed; allowed are 0 (missing) and 1 (observed)"),
        (torch.full((H, W), float("nan")), {}, "mask value nan is not allowed"),
        (torch.ones(H, W), {}, "mask item 0 observes every pixel (nothing to generate); allowed are masks with"),
        (torch.zeros(2, 1, H, W), {}, "mask item 0 observes no pixel (nothing to condition on)"),
        (torch.eye(H)[None].expand(2, H, W), {}, "mask of shape (2, 28, 28) is not allowed; allowed shapes are (H, W), (1, H, W) or (B, 1, H, W)"),
        (torch.eye(32), {"height": H, "width": W}, "mask of size 32x32 is not allowed; allowed is the image size 28x28"),
        (torch.eye(H)[None, None].expand(3, 1, H, W), {"batch": 2}, "a batch of 3 masks is not allowed for 2 images; allowed are 1 or 2 masks"),
        ([[0, 1]], {}, "mask of type list is not allowed; allowed is a torch.Tensor"),
    ],
)
def test_user_mask_errors(mask, kwargs, message):
    with pytest.raises(ConditionError) as err:
        user_mask(mask, **kwargs)
    assert message in str(err.value)


# -- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, spec",
    [
        ("quadrants:2", MaskSpec("quadrants", k=2)),
        (" Quadrants : 3 ", MaskSpec("quadrants", k=3)),
        ("bottom-half", MaskSpec("bottom-half")),
        ("centre", MaskSpec("centre", fraction=0.5)),
        ("center", MaskSpec("centre")),
        ("centre:0.4", MaskSpec("centre", fraction=0.4)),
        ("random-rect", MaskSpec("random-rect", min_fraction=0.25, max_fraction=0.75)),
        ("random-rect:0.2-0.6", MaskSpec("random-rect", min_fraction=0.2, max_fraction=0.6)),
        ("dropout:0.5", MaskSpec("dropout", p=0.5)),
        ("dropout", MaskSpec("dropout", p=0.5)),
    ],
)
def test_parse_mask_spec(text, spec):
    assert parse_mask_spec(text) == spec
    assert parse_mask_spec(str(spec)) == spec  # str() is the canonical text


@pytest.mark.parametrize(
    "text, message",
    [
        ("bottom", "mask 'bottom': unknown mask name 'bottom'; allowed are quadrants:K (K = 1, 2 or 3 observed quadrants), top-half"),
        ("quadrants:4", "mask 'quadrants:4': quadrants K = 4 is not allowed; allowed are 1, 2 or 3 observed quadrants"),
        ("quadrants:0", "quadrants K = 0 is not allowed"),
        ("quadrants", "mask 'quadrants': quadrants needs K, the number of observed quadrants; allowed are quadrants:1"),
        ("quadrants:two", "'two' is not a whole number; allowed are quadrants:1, quadrants:2 or quadrants:3"),
        ("dropout:1", "mask 'dropout:1': dropout p = 1.0 is not allowed; allowed are numbers strictly between 0 and 1"),
        ("dropout:0", "dropout p = 0.0 is not allowed"),
        ("dropout:-0.2", "dropout p = -0.2 is not allowed"),
        ("dropout:nan", "dropout p = nan is not allowed"),
        ("centre:1.5", "mask 'centre:1.5': centre fraction = 1.5 is not allowed; allowed are numbers strictly between 0 and 1"),
        ("centre:", "mask 'centre:': nothing after ':'"),
        ("centre:half", "'half' is not a number; allowed are centre:F with 0 < F < 1"),
        ("random-rect:0.6-0.2", "random-rect min_fraction = 0.6 is above max_fraction = 0.2; allowed is 0 < min_fraction <= max_fraction < 1"),
        ("random-rect:0.5", "'0.5' is not a MIN-MAX range; allowed is random-rect:MIN-MAX"),
        ("random-rect:0.2-1", "random-rect max_fraction = 1.0 is not allowed"),
        ("bottom-half:2", "mask 'bottom-half:2': bottom-half takes no value, got '2'; allowed is plain bottom-half (the bottom half is missing)"),
    ],
)
def test_parse_errors_name_the_value_and_allowed(text, message):
    with pytest.raises(ConditionError) as err:
        parse_mask_spec(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: quadrant_mask(1, H, W, 4), "quadrants K = 4 is not allowed; allowed are 1, 2 or 3"),
        (lambda: half_mask(1, H, W, "bottom-half"), "half 'bottom-half' is not allowed; allowed are the missing half: top, bottom, left or right"),
        (lambda: centre_mask(1, H, W, 0.0), "centre fraction = 0.0 is not allowed"),
        (lambda: dropout_mask(1, H, W, 1.2, gen()), "dropout p = 1.2 is not allowed"),
        (lambda: random_rect_mask(1, H, W, gen(), 0.0, 0.5), "random-rect min_fraction = 0.0 is not allowed"),
        (lambda: quadrant_mask(0, H, W, 1), "mask batch size 0 is not allowed; allowed are integers >= 1"),
        (lambda: centre_mask(1, 1, W), "mask height 1 is not allowed; allowed are integers >= 2"),
        (lambda: MaskSpec("circle"), "unknown mask kind 'circle'; allowed are quadrants, top-half"),
        (lambda: MaskSpec("quadrants", k=2, p=0.5), "mask 'quadrants' does not take p = 0.5; allowed is k"),
        (lambda: MaskSpec("top-half", fraction=0.3), "mask 'top-half' does not take fraction = 0.3; allowed is no parameter"),
    ],
)
def test_function_and_spec_errors(call, message):
    with pytest.raises(ConditionError) as err:
        call()
    assert message in str(err.value)


def test_random_masks_require_a_generator():
    with pytest.raises(TypeError, match="need a torch.Generator"):
        dropout_mask(1, H, W, 0.5, None)  # type: ignore[arg-type]


# -- the mix --------------------------------------------------------------------------------
def test_mix_draws_each_kind_at_its_weight():
    # Observed-pixel counts tell the kinds apart: 196, 392 and 588 of 784.
    mix = MaskMix(["quadrants:1", "bottom-half", MaskSpec("quadrants", k=3)], [1, 2, 1])
    m = mix.sample(4000, H, W, gen())
    assert_binary_masks(m, 4000)
    counts = m.sum(dim=(1, 2, 3))
    drawn = [int((counts == c).sum()) for c in (196, 392, 588)]
    assert sum(drawn) == 4000
    for n, want in zip(drawn, [0.25, 0.5, 0.25]):
        assert abs(n / 4000 - want) < 0.03  # standard error < 0.008
    # The kinds sample() used are draw_kinds() with the same seed.
    kinds = mix.draw_kinds(4000, gen())
    assert torch.equal(torch.tensor([196.0, 392.0, 588.0])[kinds], counts)


def test_mix_is_fresh_every_batch_and_reproducible():
    mix = MaskMix(["random-rect", "dropout:0.5", "centre"])
    assert mix.weights == [1.0, 1.0, 1.0]
    g = gen(3)
    first, second = mix.sample(16, H, W, g), mix.sample(16, H, W, g)
    assert not torch.equal(first, second)
    assert torch.equal(first, mix.sample(16, H, W, gen(3)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"specs": []}, "mask mix has no specs; allowed is a list of one or more"),
        ({"specs": ["centre", "dropout"], "weights": [1]}, "mask mix has 1 weights for 2 specs; allowed is one weight per spec"),
        ({"specs": ["centre"], "weights": [-1]}, "mask mix weight -1 is not allowed; allowed are finite numbers >= 0"),
        ({"specs": ["centre", "dropout"], "weights": [0, 0]}, "mask mix weights [0, 0] are all 0"),
        ({"specs": ["quadrants:5"]}, "mask 'quadrants:5': quadrants K = 5 is not allowed"),
    ],
)
def test_mix_errors(kwargs, message):
    with pytest.raises(ConditionError) as err:
        MaskMix(**kwargs)
    assert message in str(err.value)
