"""A probe, not part of condgen: one autograd node per MLP, the forward pass of a stack of linear layers and
activations with its backward written by hand (#28). ``benchmarks/fused_step.py`` times it against the plain
modules; it did not pay on this CPU (``docs/performance.md``), so the engine keeps the plain modules.

Autograd records every ``Linear``, activation, concatenation and transpose of an MLP as its own node; #28's
hypothesis was that on a CPU that bookkeeping is where a small model's step loses its time to the arithmetic.
:class:`FusedMLPFunction` runs the same forward operators (``addmm`` and the activation, so its outputs are
bit for bit the plain modules'), keeps the inputs of each layer and what the activation's derivative reads,
and in backward computes each layer's weight, bias and input gradients with three large operators
(``mm``, ``mm``, ``sum``) and the activation's derivative with one (the ATen kernels autograd itself calls).

The inputs are given as parts that the first layer takes concatenated (``[x, e]``, ``[z, e]``, ``[e]``): the
cat is in the node too, and only the parts that need a gradient get one (a plugin's embedding, the absent
embedding of condition dropout, z for the decoder), each from its columns of the first weight. The plugins'
embeddings stay ordinary autograd modules before the node.

:func:`fuse` gives a CVAE's MLPs (the engine's ``mlp`` architecture and the conditional prior) a ``forward``
that calls the node; the parameters stay the modules' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

aten = torch.ops.aten
F_ = torch._C._nn


@dataclass(frozen=True)
class _Activation:
    """An activation as the fused node computes it: the forward function (the kernel its module calls, so the
    outputs are the module's), whether its derivative reads the activation's input (else its output), and that
    derivative as one ATen kernel ``(grad (B, W), saved (B, W)) -> (B, W)`` (the one autograd itself calls)."""

    forward: Callable[[Tensor], Tensor]
    reads_input: bool
    derivative: Callable[[Tensor, Tensor], Tensor]


#: Each activation the config offers, by module class, with the module defaults (:func:`_activation` checks).
_ACTIVATIONS: dict[type[nn.Module], _Activation] = {
    nn.ReLU: _Activation(torch.relu, False, lambda g, out: aten.threshold_backward(g, out, 0.0)),
    nn.Tanh: _Activation(torch.tanh, False, aten.tanh_backward),
    nn.ELU: _Activation(F_.elu, False, lambda g, out: aten.elu_backward(g, 1.0, 1.0, 1.0, True, out)),
    nn.LeakyReLU: _Activation(F_.leaky_relu, False, lambda g, out: aten.leaky_relu_backward(g, out, 0.01, True)),
    nn.GELU: _Activation(F_.gelu, True, aten.gelu_backward),
    nn.SiLU: _Activation(F_.silu, True, aten.silu_backward),
}


def _activation(module: nn.Module) -> _Activation | None:
    """``module``'s entry in :data:`_ACTIVATIONS`, or None for another module or settings other than the
    defaults the derivatives above assume."""
    if isinstance(module, nn.ELU) and module.alpha != 1.0:
        return None
    if isinstance(module, nn.LeakyReLU) and module.negative_slope != 0.01:
        return None
    if isinstance(module, nn.GELU) and module.approximate != "none":
        return None
    return _ACTIVATIONS.get(type(module))


class FusedMLPFunction(torch.autograd.Function):
    """An MLP's forward pass as one autograd node: ``apply(activation, n_parts, *parts, W_0, b_0, ..., W_k, b_k)``
    -> ``(B, out)``.

    ``parts`` ``(B, D_j)`` are concatenated into the first layer's input ``(B, sum D_j)``; layer i is
    ``h @ W_i.T + b_i``, followed by ``activation`` (an :class:`_Activation`) for every layer but the last.
    """

    @staticmethod
    def forward(ctx: Any, act: _Activation, n_parts: int, *tensors: Tensor) -> Tensor:  # type: ignore[override]
        h = tensors[0] if n_parts == 1 else torch.cat(tensors[:n_parts], dim=1)
        weights, biases = tensors[n_parts::2], tensors[n_parts + 1::2]
        saved = [h]  # each layer's input (its weight's gradient), then what each activation's derivative reads
        derived = []
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.addmm(b, h, w.t())
            if i < last:
                pre = h
                h = act.forward(pre)
                saved.append(h)
                derived.append(pre if act.reads_input else h)
        ctx.act, ctx.widths = act, [t.shape[1] for t in tensors[:n_parts]]
        ctx.save_for_backward(*saved, *derived, *weights)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        saved, widths, derivative = ctx.saved_tensors, ctx.widths, ctx.act.derivative
        layers = (len(saved) + 1) // 3
        inputs, derived, weights = saved[:layers], saved[layers:2 * layers - 1], saved[2 * layers - 1:]
        needs = ctx.needs_input_grad[2 + len(widths):]  # after the activation, the count and the parts
        grads: list[Tensor | None] = [None] * (2 * layers)
        g = grad.contiguous()
        for i in range(layers - 1, -1, -1):
            if needs[2 * i]:
                grads[2 * i] = g.t().mm(inputs[i])  # (out, in): the weight's own layout, no copy to make
            if needs[2 * i + 1]:
                grads[2 * i + 1] = g.sum(0)
            if i:
                g = derivative(g.mm(weights[i]), derived[i - 1])
        parts: list[Tensor | None] = []
        start = 0
        for width, need in zip(widths, ctx.needs_input_grad[2:]):  # each part from its columns of W_0
            parts.append(g.mm(weights[0][:, start:start + width]) if need else None)
            start += width
        return (None, None, *parts, *grads)


def plan(stack: nn.Sequential) -> tuple[list[nn.Linear], _Activation] | None:
    """The linear layers and the activation of ``stack`` where it is ``Linear, act, ..., Linear`` with one
    activation of :data:`_ACTIVATIONS` throughout (the form :class:`FusedMLPFunction` computes), else None."""
    linears, between = list(stack)[0::2], list(stack)[1::2]
    acts = [_activation(a) for a in between]
    if not (all(type(m) is nn.Linear and m.bias is not None for m in linears)
            and len(linears) == len(between) + 1 and None not in acts and len(set(map(type, between))) <= 1):
        return None
    return linears, acts[0] if acts else _ACTIVATIONS[nn.ReLU]


def run(stack_plan: tuple[list[nn.Linear], _Activation], parts: Sequence[Tensor]) -> Tensor:
    """The planned stack on ``parts`` ``(B, D_j)`` taken concatenated, as one fused node: ``(B, out)``."""
    linears, act = stack_plan
    return FusedMLPFunction.apply(act, len(parts), *parts, *[t for m in linears for t in (m.weight, m.bias)])


def fuse(model: nn.Module) -> list[str]:
    """Make each MLP of a :class:`condgen.engine.CVAE` built with ``model.arch: mlp`` (its encoder, its decoder
    and a conditional prior's network) one fused node, by giving the module a ``forward`` of its own; returns
    the names of the networks fused. :func:`unfuse` takes the plain modules back."""
    fused = []
    enc, dec = model.encoder, model.decoder
    prior_net = getattr(model.prior, "net", None)
    if enc is not None and (p := plan(enc)) is not None:
        enc.forward = lambda x, e, p=p: run(p, (x.flatten(1), e)).chunk(2, dim=1)
        fused.append("encoder")
    if (p := plan(dec)) is not None:
        dec.forward = lambda z, e, p=p, shape=dec.out_shape: run(p, (z, e)).view(z.shape[0], *shape)
        fused.append("decoder")
    if prior_net is not None and (p := plan(prior_net)) is not None:
        prior_net.forward = lambda e, p=p: run(p, (e,))
        fused.append("prior")
    return fused


def unfuse(model: nn.Module) -> None:
    """Undo :func:`fuse` and :func:`fuse_likelihood`: the plain modules' own ``forward`` and ``nll``."""
    for net in (model.encoder, model.decoder, getattr(model.prior, "net", None)):
        if net is not None:
            net.__dict__.pop("forward", None)
    model.likelihood.__dict__.pop("nll", None)


class BernoulliNLL(torch.autograd.Function):
    """The Bernoulli likelihood's -log p per item, ``(logits (B, D), x (B, D)) -> (B,)``, as one node whose
    backward is ``sigmoid(logits) - x`` times the incoming gradient (every element scored)."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits, x)
        return torch.binary_cross_entropy_with_logits(logits, x, None, None, 0).sum(dim=-1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        logits, x = ctx.saved_tensors
        return (torch.sigmoid(logits) - x).mul_(grad.unsqueeze(-1)), None


def fuse_likelihood(model: nn.Module) -> bool:
    """Make a Bernoulli likelihood's -log p one :class:`BernoulliNLL` node where nothing is masked (``scored``
    None); :func:`unfuse` takes the plain one back. False for another likelihood."""
    lik = model.likelihood
    if lik.name != "bernoulli":
        return False
    plain = type(lik).nll
    lik.nll = lambda params, x, scored=None: (BernoulliNLL.apply(params, x) if scored is None and params.dim() == 2
                                              else plain(lik, params, x, scored))
    return True
