"""The lean optimizer step is ``opt.step()`` bit for bit, and steps back to it where it must."""

from __future__ import annotations

import copy

import pytest
import torch

from condgen.training.optimizer import stepper


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _train(opt_factory, use_stepper: bool, steps: int = 7, skip_grad_at: int | None = None,
           reload_at: int | None = None, clear_at: int | None = None) -> list[torch.Tensor]:
    model = _model()
    opt = opt_factory(model.parameters())
    step = stepper(opt) if use_stepper else opt.step
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        if i == reload_at:  # as resuming does: new group dicts and state tensors
            opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        if i == clear_at:
            opt.state.clear()
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
    lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, maximize=True, fused=True),
], ids=["adam", "adam-weight-decay", "adamw", "adam-maximize"])
@pytest.mark.parametrize("event", [{}, {"skip_grad_at": 3}, {"reload_at": 3}, {"clear_at": 3}],
                         ids=["plain", "missing-grad", "load-state-dict", "state-cleared"])
def test_stepper_equals_step_bit_for_bit(factory, event):
    expected = _train(factory, use_stepper=False, **event)
    got = _train(factory, use_stepper=True, **event)
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


def test_stepper_leaves_steps_with_hooks_to_the_optimizer():
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)
    seen = []
    step = stepper(opt)
    for i in range(3):
        if i == 1:
            opt.register_step_post_hook(lambda o, args, kwargs: seen.append(1))
        opt.zero_grad()
        model(torch.ones(2, 6)).sum().backward()
        step()
    assert seen == [1, 1]  # the hook ran at both steps after it was registered
