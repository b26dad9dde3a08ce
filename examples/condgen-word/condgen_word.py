"""The ``word`` conditioner: ask for a digit by its English name, spelt however you like.

An example third-party condgen plugin, installed with ``pip install ./examples/condgen-word``::

    condgen train --conditioner word --data-dir DIR --out runs/word
    condgen sample runs/word --condition word=seven,sevn,SEVEN,fiev --num 10 --out words.png

A condition is a word, held as its lower-case letters (``(B, max_len)`` int64 codes: 1 = a ...
26 = z, 0 = padding after the word). A character-level network embeds it, so a word the model
never saw still lands near the digit it resembles. It learns that from the data: while training,
``typo_rate`` of the words read from a batch carry one random typo (a letter dropped, doubled,
changed, or two swapped), drawn from the engine's seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

import condgen

try:
    __version__ = version("condgen-word")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def one_typo(word: str) -> list[str]:
    """Every misspelling of ``word`` one edit away (Damerau-Levenshtein distance 1)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    dropped = [a + b[1:] for a, b in splits if b]
    swapped = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    changed = [a + ch + b[1:] for a, b in splits if b for ch in LETTERS]
    added = [a + ch + b for a, b in splits for ch in LETTERS]
    return sorted(set(dropped + swapped + changed + added) - {word, ""})


class WordConfig(condgen.ConditionerConfig):
    words: list[str] = Field(DIGITS, description="the name of each class, in class order")
    field: str = Field("label", description="data field holding the class number")
    max_len: int = Field(12, ge=2, le=64, description="longest word a condition may hold")
    typo_rate: float = Field(0.5, ge=0, le=1, description="share of training words given one typo")
    embed_dim: int = Field(32, ge=1, description="width of the word embedding")

    @field_validator("words")
    @classmethod
    def _letters_only(cls, words: list[str]) -> list[str]:
        bad = [w for w in words if not w or not set(w) <= set(LETTERS)]
        if bad or len(set(words)) < 2 or len(set(words)) != len(words):
            raise ValueError(f"need at least 2 distinct lower-case words of letters a-z; got {words}")
        return words


class CharCNN(nn.Module):
    """Letter codes ``(B, L)`` -> embedding ``(B, embed_dim)``: letters, a width-3 convolution over
    them, the strongest response of each filter anywhere in the word, then a linear layer."""

    def __init__(self, embed_dim: int, letter_dim: int = 16, filters: int = 64) -> None:
        super().__init__()
        self.letters = nn.Embedding(len(LETTERS) + 1, letter_dim, padding_idx=0)
        self.conv = nn.Conv1d(letter_dim, filters, kernel_size=3, padding=1)
        self.out = nn.Linear(filters, embed_dim)

    def forward(self, codes: Tensor) -> Tensor:
        h = torch.relu(self.conv(self.letters(codes).transpose(1, 2)))  # (B, filters, L)
        h = h.masked_fill((codes == 0).unsqueeze(1), 0.0)  # padding is no evidence (ReLU makes 0 the floor)
        return self.out(h.amax(dim=2))


class WordConditioner(condgen.Conditioner):
    """Condition on a class's name, such as ``seven``; a condition is ``(B, max_len)`` int64 letter codes."""

    name = "word"
    Config = WordConfig
    config: WordConfig

    def __init__(self, config: WordConfig | Mapping | None = None) -> None:
        super().__init__(config)
        words = self.config.words
        too_long = [w for w in words if len(w) > self.config.max_len]
        if too_long:
            raise condgen.ConfigError(f"conditioner 'word' config: word {too_long[0]!r} is longer than max_len = "
                                      f"{self.config.max_len}; raise max_len")
        # Row 0 of each class is its name, the others its one-typo misspellings (padded with repeats),
        # leaving out any that is another class's name (with words such as "cat" and "bat").
        spellings = [[w] + [t for t in one_typo(w) if len(t) <= self.config.max_len and t not in words]
                     for w in words]
        width = max(map(len, spellings))
        self.spellings = torch.stack([self.encode(s + s[1:2] * (width - len(s))) for s in spellings])
        self.typo_count = torch.tensor([len(s) - 1 for s in spellings])

    @property
    def condition_shape(self) -> tuple[int, ...]:
        return (self.config.max_len,)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def build_embedding(self) -> nn.Module:
        return CharCNN(self.embed_dim)

    def encode(self, words: list[str]) -> Tensor:
        """Words of lower-case letters -> letter codes ``(K, max_len)``."""
        return torch.tensor([[LETTERS.index(ch) + 1 for ch in w] + [0] * (self.config.max_len - len(w))
                             for w in words], dtype=torch.long)

    def decode(self, c: Tensor) -> str:
        """One condition's letter codes ``(max_len,)`` -> its word."""
        return "".join(LETTERS[i - 1] for i in c.tolist() if i > 0)

    def labels(self, data: Mapping[str, Tensor]) -> Tensor:
        """The class numbers of the data ``(N,)`` int64, on the CPU; ConditionError unless they are classes."""
        label = self.require_field(data, self.config.field)
        k = len(self.config.words)
        whole = not (label.is_complex() or label.dtype == torch.bool) and torch.equal(label, label.round())
        if label.dim() != 1 or not whole or (label.numel() and not 0 <= label.min() <= label.max() < k):
            raise condgen.ConditionError(f"data field {self.config.field!r} must hold class numbers 0..{k - 1} of "
                                         f"shape (N,), one per word; got {label.dtype} of shape {tuple(label.shape)}")
        return label.long().cpu()

    def fit(self, train: Mapping[str, Tensor]) -> None:
        self.labels(train)  # a data set without proper class numbers fails here, before training

    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        label = self.labels(batch)
        pick = torch.zeros_like(label)  # the word itself ...
        if generator is not None and self.config.typo_rate > 0:  # ... or, while training, a typo of it
            u = torch.rand(2, label.shape[0], generator=generator, device=generator.device).cpu()
            typo = 1 + (u[1] * self.typo_count[label]).long()
            pick = torch.where(u[0] < self.config.typo_rate, typo, pick)
        return self.spellings[label, pick].to(batch[self.config.field].device)

    def check_condition(self, c: Tensor) -> Tensor:
        shape = (c.dim() == 2 and c.shape[1] == self.config.max_len)
        if not shape or c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
            raise condgen.ConditionError(f"word condition must be letter codes of shape (B, {self.config.max_len}), "
                                         f"integers; got {c.dtype} of shape {tuple(c.shape)}")
        c = c.long()
        bad = (c < 0) | (c > len(LETTERS))
        if bad.any():
            raise condgen.ConditionError(f"word condition holds code {int(c[bad][0])}; letter codes are 0..26")
        # a word is 1 or more letters, then only padding: no letter may follow a 0
        after_end = (c == 0).long().cummax(dim=1).values.bool() & (c > 0)
        if c.numel() and ((c[:, 0] == 0).any() or after_end.any()):
            raise condgen.ConditionError("word condition rows must be one or more letter codes (1..26) followed "
                                         "only by 0s")
        return c

    def parse_condition(self, text: str) -> Tensor:
        if text.strip().lower() == "all":
            return self.encode(self.config.words)
        words = [w.strip().lower() for w in text.split(",")]
        for w in words:
            if not w or not set(w) <= set(LETTERS) or len(w) > self.config.max_len:
                raise condgen.ConditionError(
                    f"word={text!r}: {w!r} is not a word; give up to {self.config.max_len} letters a-z "
                    "(any case), a comma list such as seven,sevn, or all")
        return self.encode(words)

    def conditions_from_value(self, value: Any) -> Tensor:
        """A word or a list of words (``run.sample({"word": ["seven", "sevn"]})``), or letter codes."""
        if isinstance(value, (list, tuple)) and value and all(isinstance(w, str) for w in value):
            return self.parse_condition(",".join(value))
        return super().conditions_from_value(value)

    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor:
        """The rows of samples.png: each class's name, then one random misspelling of each."""
        labels = torch.arange(len(self.config.words))
        pick = 1 + (torch.rand(len(labels), generator=generator, device=generator.device).cpu()
                    * self.typo_count).long()
        return torch.cat([self.spellings[:, 0], self.spellings[labels, pick]])

    def describe_condition(self, c: Tensor) -> str:
        return self.decode(c)

    @torch.no_grad()
    def evaluate(self, run: condgen.Run, test: Mapping[str, Tensor]) -> dict[str, float]:
        """``read_accuracy``: how often the test image's own class name gets the best ELBO among all the
        names; ``typo_read_accuracy``: the same among one random misspelling of each name."""
        gen = condgen.seeded_generator(torch.device("cpu"), condgen.EVAL_SEED)
        typos = self.example_conditions(test, gen)[len(self.config.words):]
        return {"read_accuracy": self.read_accuracy(run, test, self.spellings[:, 0]),
                "typo_read_accuracy": self.read_accuracy(run, test, typos)}

    def read_accuracy(self, run: condgen.Run, test: Mapping[str, Tensor], words: Tensor) -> float:
        """Share of test items whose class's entry in ``words`` ``(classes, max_len)`` gives the best ELBO."""
        correct, n = 0, 0
        for start, batch in condgen.iter_batches(test, 1000):
            conds = run.conditions_from_batch(batch, None)
            truth = batch[self.config.field].long()
            scores = []
            for word in words.to(run.device):
                conds[self.name] = word.expand(truth.shape[0], -1)
                gen = condgen.seeded_generator(run.device, condgen.EVAL_SEED + start)  # the same noise per word
                scores.append(run.terms(batch, conds, gen, objective=False)["neg_elbo"])
            correct += int((torch.stack(scores, 1).argmin(1) == truth).sum())
            n += truth.shape[0]
        return correct / max(n, 1)


@condgen.hookimpl
def condgen_register_conditioners(register: Callable[[type[condgen.Conditioner]], None]) -> None:
    register(WordConditioner)
