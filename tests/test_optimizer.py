"""The lean optimizer step is ``opt.step()`` bit for bit, and steps back to it where it must."""

from __future__ import annotations

import pytest
import torch

from condgen.optimizer import stepper


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _train(opt_factory, use_stepper: bool, steps: int = 7, skip_grad_at: int | None = None) -> list[torch.Tensor]:
    model = _model()
    opt = opt_factory(model.parameters())
    step = stepper(opt) if use_stepper else opt.step
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        opt.param_groups[0]["lr"] = 0.01 * (1 + i) / steps  # a schedule: read at every call
        x = torch.randn(4, 6, generator=gen)
        opt.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        if i == skip_grad_at:
            model[2].bias.grad = None  # a parameter without a gradient this step
        step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("factory", [
    lambda ps: torch.optim.Adam(ps, lr=0.01, fused=True),
    lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, fused=True),
    lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, fused=True),
], ids=["adam", "adam-weight-decay", "adamw"])
@pytest.mark.parametrize("skip", [None, 3])
def test_stepper_equals_step_bit_for_bit(factory, skip):
    expected = _train(factory, use_stepper=False, skip_grad_at=skip)
    got = _train(factory, use_stepper=True, skip_grad_at=skip)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)
    assert not torch.equal(expected[0], _model()[0].weight)  # the steps moved the weights


def test_stepper_takes_the_kernel_path_once_state_exists(monkeypatch):
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)
    calls = []
    real_step = opt.step
    monkeypatch.setattr(opt, "step", lambda: (calls.append(1), real_step()))
    step = stepper(opt)
    for _ in range(4):
        opt.zero_grad()
        model(torch.ones(2, 6)).sum().backward()
        step()
    assert calls == [1]  # only the first step, which makes the state
    assert int(opt.state[model[0].weight]["step"]) == 4


@pytest.mark.parametrize("factory", [
    lambda ps: torch.optim.Adam(ps, lr=0.01),  # not fused
    lambda ps: torch.optim.Adam(ps, lr=0.01, fused=True, amsgrad=True),
    lambda ps: torch.optim.SGD(ps, lr=0.01),
], ids=["unfused", "amsgrad", "sgd"])
def test_stepper_is_step_for_what_it_does_not_cover(factory):
    opt = factory(_model().parameters())
    assert stepper(opt) == opt.step
