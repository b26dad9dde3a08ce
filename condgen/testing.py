"""The conformance kit: checks that a conditioner keeps the plugin contract, for plugin authors' own tests.

Subclass :class:`ConditionerContract` in a test module, and pytest runs one test per check::

    from condgen.testing import ConditionerContract
    from my_package import WordConditioner

    class TestWordConditioner(ConditionerContract):
        conditioner_class = WordConditioner
        config = {"typo_rate": 0.0}             # optional; {} takes the defaults
        texts = ["seven", "sevn,SEVEN", "all"]  # command-line conditions that must parse
        bad_texts = ["", "s3ven"]               # ones that must be refused with ConditionError
        same_units = [("seven", 0)]             # as a user gives it, and a data item with that condition
        classes = {}                            # optional: the data's class names, {field: [name, ...]}

        def make_batch(self):
            return {"image": torch.rand(6, 1, 28, 28), "label": torch.tensor([7, 1, 2, 3, 4, 5])}

Or call :func:`check_conditioner` with the same arguments from any test. Each check raises
``AssertionError`` naming the conditioner, the method and what it returned (an exception the
conditioner raises on a condition the test gives as valid comes through as itself). Each conditioner is
made as the engine makes one for a new run: from its config, then
:meth:`~condgen.Conditioner.learn_class_names` with ``classes`` (the data's class names, ``{field: [name, ...]}``;
none unless given), then :meth:`~condgen.Conditioner.fit` on the batch. What is checked:

- the config: a JSON round trip gives the same config, and an unknown field is a :class:`ConfigError`;
- the embedding: finite ``float32`` (the model's dtype) ``(B, *embed_shape)`` (``(B, embed_dim)``, or
  ``(B, embed_dim, H, W)`` for a spatial embedding, whose ``spatial_size`` must be two ints >= 1), for a batch
  of data conditions;
- the user's conditions: every text in ``texts`` (typed after ``NAME=``) and every Python value in
  ``values`` gives ``(K, *condition_shape)`` in the dtype of the data conditions;
- the units rule: each ``same_units`` pair, a condition as a user gives it and the index of a data
  item, gives exactly that item's condition. :func:`check_conditioner` requires at least one pair;
  the test class skips the check, visibly, without any (where data conditions are drawn at random);
- the checkpoint state: JSON-serialisable, and a conditioner restored from it, with the same
  embedding weights, gives identical conditions and embeddings, and describes them alike (so what
  :meth:`~condgen.Conditioner.learn_class_names` learnt is kept too);
- bad conditions: every text in ``bad_texts``, a condition of the wrong shape, a batch without the
  data fields, and Python values no conditioner takes (``None``, a bool, a bool among numbers, complex
  numbers, a tensor on the ``meta`` device, a ragged list, an empty batch: :func:`condgen.tensor_from_value`
  refuses them all, so a ``conditions_from_value`` of one's own should convert through it) all raise
  :class:`ConditionError`, not another exception;
- determinism: conditions and example conditions drawn with equally seeded generators are equal,
  and drawing them leaves torch's global random state alone (randomness comes from the generator);
- missing values: :meth:`~condgen.Conditioner.missing_values` gives ``{field: (B,) bool}``; given a batch
  with missing values (``missing_batch``, marked :func:`condgen.is_missing`) and the items they leave without a
  condition (``missing_items``), it marks exactly those, ``fit`` learns from it what it learns without them,
  the other items' conditions are theirs, and every item's condition is valid and finite, with a finite
  embedding and finite gradients (the placeholder a missing item gets must not poison them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from .common.errors import ConditionError, ConfigError
from .common.rng import seeded_generator
from .engine.architecture import Architecture, EmbeddingLayout, NetworkShapes
from .plugin.conditioner import Conditioner, check_conditioner_class

__all__ = [
    "ConditionerContract",
    "check_architecture",
    "check_bad_conditions",
    "check_conditioner",
    "check_config",
    "check_determinism",
    "check_embedding",
    "check_missing_values",
    "check_parsing",
    "check_state_round_trip",
    "check_units",
]

Batch = Mapping[str, Tensor]
#: The data's class names, ``{field: [name, ...]}`` (:attr:`condgen.DataSplits.classes`).
Classes = Mapping[str, Sequence[str]]
#: A field name no config has, for the unknown-field check.
UNKNOWN_FIELD = "no_such_setting_xyz"


def _fitted(
    cls: type[Conditioner], batch: Batch, config: Mapping[str, Any] | None, classes: Classes | None = None
) -> Conditioner:
    """A conditioner as the engine makes one for a new run: told the data's class names, then fitted."""
    conditioner = cls(dict(config or {}))
    conditioner.learn_class_names({field: list(names) for field, names in (classes or {}).items()})
    conditioner.fit(batch)
    return conditioner


def _shape(t: Any) -> str:
    return f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, Tensor) else f"{type(t).__name__} {t!r}"


def _generator(batch: Batch, seed: int = 0) -> torch.Generator:
    device = next(iter(batch.values())).device if batch else torch.device("cpu")
    return seeded_generator(device, seed)


def _data_conditions(conditioner: Conditioner, batch: Batch, seed: int = 0) -> Tensor:
    """Conditions ``(B, *condition_shape)`` of the batch, checked against the contract."""
    name = conditioner.name
    c = conditioner.condition_from_batch(batch, _generator(batch, seed))
    n = len(next(iter(batch.values())))
    want = (n, *conditioner.condition_shape)
    assert isinstance(c, Tensor) and tuple(c.shape) == want, (
        f"{name}: condition_from_batch gave {_shape(c)} for a batch of {n}; expected shape {want}")
    checked = conditioner.check_condition(c)
    assert isinstance(checked, Tensor) and checked.dtype == c.dtype and torch.equal(checked, c), (
        f"{name}: check_condition changed the conditions condition_from_batch gave ({_shape(c)} -> "
        f"{_shape(checked)}); data conditions must already be canonical")
    return c


def _user_condition(conditioner: Conditioner, given: Any) -> tuple[str, Tensor]:
    """What a user's text (``parse_condition``) or Python value (``conditions_from_value``) gives."""
    if isinstance(given, str):
        return f"{conditioner.name}: parse_condition({given!r})", conditioner.parse_condition(given)
    return f"{conditioner.name}: conditions_from_value({given!r})", conditioner.conditions_from_value(given)


def check_config(cls: type[Conditioner], config: Mapping[str, Any] | None = None) -> None:
    """The config survives a JSON round trip (as in a checkpoint) and refuses an unknown field."""
    check_conditioner_class(cls)
    conditioner = cls(dict(config or {}))
    dumped = json.loads(json.dumps(conditioner.config.model_dump(mode="json")))
    again = cls(dumped).config
    assert again == conditioner.config, (
        f"{cls.name}: config {conditioner.config!r} came back from JSON as {again!r}")
    try:
        cls({**dumped, UNKNOWN_FIELD: 1})
    except ConfigError as exc:
        assert UNKNOWN_FIELD in str(exc), f"{cls.name}: the unknown-field error does not name the field: {exc}"
    else:
        raise AssertionError(f"{cls.name}: config accepted the unknown field {UNKNOWN_FIELD!r}; "
                             "derive Config from condgen.ConditionerConfig")


def check_embedding(
    cls: type[Conditioner], batch: Batch, config: Mapping[str, Any] | None = None, classes: Classes | None = None
) -> None:
    """The embedding maps the batch's conditions to finite floats ``(B, *embed_shape)``: ``(B, embed_dim)``, or
    ``(B, embed_dim, H, W)`` for a spatial embedding."""
    conditioner = _fitted(cls, batch, config, classes)
    c = _data_conditions(conditioner, batch)
    width = conditioner.embed_dim
    assert isinstance(width, int) and width >= 1, f"{cls.name}: embed_dim is {width!r}; it must be an int >= 1"
    size = conditioner.spatial_size
    assert size is None or (isinstance(size, tuple) and len(size) == 2 and all(
        isinstance(s, int) and s >= 1 for s in size)), (
        f"{cls.name}: spatial_size is {size!r}; it must be None (a flat embedding) or (H, W), two ints >= 1")
    shape = (len(c), *conditioner.embed_shape)
    out = conditioner.build_embedding()(c)
    assert isinstance(out, Tensor) and tuple(out.shape) == shape and out.dtype == torch.float32, (
        f"{cls.name}: the embedding gave {_shape(out)} for {len(c)} conditions; expected torch.float32 (the "
        f"model's dtype) of shape {shape} (embed_dim = {width}, spatial_size = {size})")
    assert torch.isfinite(out).all(), f"{cls.name}: the embedding gave non-finite values"


def check_parsing(
    cls: type[Conditioner],
    batch: Batch,
    texts: Sequence[str] = (),
    values: Sequence[Any] = (),
    config: Mapping[str, Any] | None = None,
    classes: Classes | None = None,
) -> None:
    """Command-line conditions (``texts``) and Python ones (``values``, through ``conditions_from_value``)
    give checked ``(K, *condition_shape)`` in the data conditions' dtype, which the embedding takes and
    ``describe_condition`` names."""
    conditioner = _fitted(cls, batch, config, classes)
    data = _data_conditions(conditioner, batch)
    embedding = conditioner.build_embedding()
    assert texts or values, f"{cls.name}: give at least one condition in texts or values"

    for given in [*texts, *values]:
        where, c = _user_condition(conditioner, given)
        assert isinstance(c, Tensor) and c.dim() >= 1 and len(c) >= 1, f"{where} gave {_shape(c)}; expected (K, ...)"
        assert tuple(c.shape[1:]) == conditioner.condition_shape, (
            f"{where} gave {_shape(c)}; expected (K, *{conditioner.condition_shape})")
        assert c.dtype == data.dtype, (
            f"{where} gave {c.dtype}, but data conditions are {data.dtype}: the two must be in the same units")
        assert torch.equal(conditioner.check_condition(c), c), f"{where} gave conditions check_condition changes"
        assert tuple(embedding(c.to(data.device)).shape) == (len(c), *conditioner.embed_shape), (
            f"{where}: the embedding does not take them")
        for row in c:
            label = conditioner.describe_condition(row)
            assert isinstance(label, str) and label, f"{where}: describe_condition gave {label!r}"


def check_units(
    cls: type[Conditioner],
    batch: Batch,
    same_units: Sequence[tuple[Any, int]],
    config: Mapping[str, Any] | None = None,
    classes: Classes | None = None,
) -> None:
    """The units rule: each ``(text or value, i)`` of ``same_units``, given as a user would (typed text
    through ``parse_condition``, anything else through ``conditions_from_value``), is exactly data item
    ``i``'s condition."""
    assert same_units, (f"{cls.name}: give at least one same_units pair (a condition as a user gives it, and the "
                        "index of a data item with that condition) so the units rule is checked")
    conditioner = _fitted(cls, batch, config, classes)
    data = _data_conditions(conditioner, batch)
    for given, index in same_units:
        where, c = _user_condition(conditioner, given)
        assert len(c) == 1 and torch.equal(c[0].to(data.device), data[index]), (
            f"{where} gave {c.tolist()}, but data item {index} has condition {data[index].tolist()}; "
            "a condition given by a user must mean what the data's does (the units rule)")


def check_state_round_trip(
    cls: type[Conditioner], batch: Batch, config: Mapping[str, Any] | None = None, classes: Classes | None = None
) -> None:
    """``state()`` is JSON, and a conditioner restored with ``load_state`` (neither fitted nor told the class
    names) gives identical conditions, describes them alike and, with the same embedding weights, gives
    identical embeddings."""
    fitted = _fitted(cls, batch, config, classes)
    try:
        text = json.dumps(fitted.state())
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{cls.name}: state() is not JSON-serialisable ({exc})") from None
    restored = cls(json.loads(json.dumps(fitted.config.model_dump(mode="json"))))
    restored.load_state(json.loads(text))
    c, c_again = _data_conditions(fitted, batch), _data_conditions(restored, batch)
    assert torch.equal(c, c_again), f"{cls.name}: a restored conditioner reads other conditions from the same data"
    described = [(fitted.describe_condition(row), restored.describe_condition(row)) for row in c]
    differ = next(((i, a, b) for i, (a, b) in enumerate(described) if a != b), None)
    assert differ is None, (
        f"{cls.name}: a restored conditioner describes data item {differ[0]}'s condition as {differ[2]!r}, the "
        f"fitted one as {differ[1]!r}; keep what fit() and learn_class_names() learn in state()")
    saved, loaded = fitted.build_embedding().eval(), restored.build_embedding().eval()  # no dropout noise
    loaded.load_state_dict(saved.state_dict())
    with torch.no_grad():
        assert torch.equal(saved(c), loaded(c)), (
            f"{cls.name}: a restored conditioner embeds the same conditions differently; save what fit() "
            "learns in state() and restore it in load_state()")


def check_bad_conditions(
    cls: type[Conditioner],
    batch: Batch,
    bad_texts: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
    classes: Classes | None = None,
) -> None:
    """Bad typed conditions, a wrongly shaped condition and data without its fields raise ConditionError."""
    conditioner = _fitted(cls, batch, config, classes)
    c = _data_conditions(conditioner, batch)
    attempts: list[tuple[str, Callable[[], Any]]] = [
        (f"parse_condition({text!r})", lambda text=text: conditioner.parse_condition(text)) for text in bad_texts
    ]
    wrong = c.unsqueeze(-1).expand(*c.shape, 2)
    attempts.append((f"check_condition(a tensor of shape {tuple(wrong.shape)})", lambda: conditioner.check_condition(wrong)))
    attempts.append(("condition_from_batch({}) (data without the fields it reads)",
                     lambda: conditioner.condition_from_batch({}, _generator(batch))))
    # Python values no conditioner takes (condgen.tensor_from_value refuses them all)
    first = c.flatten()[:1].tolist()
    for what, value in [("None", None), ("True (a bool)", True), (f"{first + [True]!r} (a bool among numbers)",
                                                                  first + [True]),
                        ("a complex tensor", c.to(torch.complex64)), ("a tensor on the meta device",
                                                                       torch.empty(c.shape, device="meta")),
                        ("[[0.0], [0.0, 0.0]] (a ragged list)", [[0.0], [0.0, 0.0]]),
                        (f"an empty batch {(0, *c.shape[1:])}", c[:0])]:
        attempts.append((f"conditions_from_value({what})", lambda value=value: conditioner.conditions_from_value(value)))
    for what, attempt in attempts:
        try:
            result = attempt()
        except ConditionError as exc:
            assert str(exc).strip(), f"{cls.name}: {what} raised ConditionError with an empty message"
        except Exception as exc:
            raise AssertionError(f"{cls.name}: {what} raised {type(exc).__name__}: {exc}; raise "
                                 "condgen.ConditionError naming the value and what is allowed") from exc
        else:
            raise AssertionError(f"{cls.name}: {what} was accepted ({_shape(result)}); it must raise "
                                 "condgen.ConditionError")


def check_determinism(
    cls: type[Conditioner], batch: Batch, config: Mapping[str, Any] | None = None, classes: Classes | None = None
) -> None:
    """Equal seeds give equal conditions and example conditions, drawn without torch's global RNG."""
    conditioner = _fitted(cls, batch, config, classes)
    before = torch.random.get_rng_state()
    first, second = _data_conditions(conditioner, batch, seed=1), _data_conditions(conditioner, batch, seed=1)
    assert torch.equal(first, second), f"{cls.name}: condition_from_batch differs under equally seeded generators"
    examples = [conditioner.example_conditions(batch, _generator(batch, 2)) for _ in range(2)]
    if examples[0] is not None:
        assert isinstance(examples[1], Tensor) and torch.equal(examples[0], examples[1]), (
            f"{cls.name}: example_conditions differs under equally seeded generators")
        assert tuple(examples[0].shape[1:]) == conditioner.condition_shape, (
            f"{cls.name}: example_conditions gave {_shape(examples[0])}; expected (K, *{conditioner.condition_shape})")
    assert torch.equal(before, torch.random.get_rng_state()), (
        f"{cls.name}: drawing conditions used torch's global random state; draw from the generator argument")


def _missing_mask(conditioner: Conditioner, batch: Batch) -> Tensor:
    """The items ``(B,)`` whose condition ``missing_values`` says the batch leaves out, its answer checked."""
    name, n = conditioner.name, len(next(iter(batch.values())))
    masks = conditioner.missing_values(batch)
    assert isinstance(masks, Mapping), (
        f"{name}: missing_values gave {type(masks).__name__}; expected {{field: (B,) bool}}")
    out = torch.zeros(n, dtype=torch.bool)
    for field, mask in masks.items():
        right = isinstance(mask, Tensor) and mask.dtype == torch.bool and tuple(mask.shape) == (n,)
        assert isinstance(field, str) and right, (
            f"{name}: missing_values gave {field!r}: {_shape(mask)}; expected torch.bool of shape ({n},)")
        out |= mask.cpu()
    return out


def _close(a: Any, b: Any) -> bool:
    """Equal JSON values, floats up to rounding (a mean over the items that have a value, summed either way)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-5,
                                                                                           abs_tol=1e-7)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def check_missing_values(
    cls: type[Conditioner],
    batch: Batch,
    missing_batch: Batch | None = None,
    missing_items: Sequence[int] = (),
    config: Mapping[str, Any] | None = None,
    classes: Classes | None = None,
) -> None:
    """``missing_values`` gives ``{field: (B,) bool}`` for ``batch``. With ``missing_batch``, a batch whose
    missing values (:func:`condgen.is_missing`) leave the items ``missing_items`` without a condition: it marks
    exactly those; ``fit`` on it learns what it learns on the other items alone (its ``state()``) and their
    conditions are theirs; every item's condition is one ``check_condition`` keeps, finite, and its embedding
    and the embedding's gradients are finite."""
    _missing_mask(_fitted(cls, batch, config, classes), batch)
    if missing_batch is None:
        return
    conditioner = _fitted(cls, missing_batch, config, classes)
    marked = _missing_mask(conditioner, missing_batch)
    want = torch.zeros_like(marked)
    want[list(missing_items)] = True
    assert torch.equal(marked, want), (f"{cls.name}: missing_values marks items {marked.nonzero()[:, 0].tolist()} of "
                                       f"the batch with missing values; expected {sorted(missing_items)}")
    keep = ~want
    rest = {k: v[keep.to(v.device)] for k, v in missing_batch.items()}
    without = _fitted(cls, rest, config, classes)
    assert _close(json.loads(json.dumps(conditioner.state())), json.loads(json.dumps(without.state()))), (
        f"{cls.name}: fit learnt {conditioner.state()!r:.200} from a batch with missing values, but "
        f"{without.state()!r:.200} from its other items alone; fit must leave the missing values out")
    raw = conditioner.condition_from_batch(missing_batch, _generator(missing_batch))
    assert not (isinstance(raw, Tensor) and raw.is_floating_point()) or torch.isfinite(raw).all(), (
        f"{cls.name}: condition_from_batch gave a non-finite condition for a missing value; give a finite "
        "placeholder (the absent embedding replaces it, but a NaN poisons the gradients it passes through)")
    c = _data_conditions(conditioner, missing_batch)
    assert torch.equal(c[keep.to(c.device)], _data_conditions(without, rest)), (
        f"{cls.name}: the items with their values have other conditions in a batch with missing values")
    embedding = conditioner.build_embedding()
    out = embedding(c)
    assert torch.isfinite(out).all(), f"{cls.name}: the embedding of a batch with missing values is not finite"
    params = [p for p in embedding.parameters() if p.requires_grad]
    if params and out.requires_grad:
        out.square().sum().backward()
        bad = [n for n, p in embedding.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, f"{cls.name}: the embedding's gradients of {bad} are not finite for a batch with missing values"


def check_conditioner(
    cls: type[Conditioner],
    batch: Batch,
    *,
    texts: Sequence[str] = (),
    values: Sequence[Any] = (),
    bad_texts: Sequence[str] = (),
    same_units: Sequence[tuple[Any, int]],
    config: Mapping[str, Any] | None = None,
    classes: Classes | None = None,
    missing_batch: Batch | None = None,
    missing_items: Sequence[int] = (),
) -> None:
    """Run every check of the kit on ``cls``; ``batch`` is a few items of data, ``{field: (B, ...)}``, and
    ``classes`` the data's class names, ``{field: [name, ...]}`` (none unless given); ``missing_batch`` a batch
    with missing values, leaving ``missing_items`` without a condition (see :func:`check_missing_values`)."""
    check_config(cls, config)
    check_embedding(cls, batch, config, classes)
    check_determinism(cls, batch, config, classes)  # before the checks that compare conditions drawn twice
    check_parsing(cls, batch, texts, values, config, classes)
    check_units(cls, batch, same_units, config, classes)
    check_state_round_trip(cls, batch, config, classes)
    check_bad_conditions(cls, batch, bad_texts, config, classes)
    check_missing_values(cls, batch, missing_batch, missing_items, config, classes)


class ConditionerContract:
    """A pytest base class: subclass it as ``TestSomething``, set the attributes, define :meth:`make_batch`."""

    #: The conditioner under test.
    conditioner_class: ClassVar[type[Conditioner]]
    #: Its config (``{}``: the defaults).
    config: ClassVar[Mapping[str, Any]] = {}
    #: Command-line conditions (what follows ``NAME=``) that must parse.
    texts: ClassVar[Sequence[str]] = ()
    #: Python values (``run.sample({NAME: value})``) that must give conditions; for a conditioner with no
    #: command-line form, give these instead of ``texts``.
    values: ClassVar[Sequence[Any]] = ()
    #: Command-line conditions that must raise ConditionError.
    bad_texts: ClassVar[Sequence[str]] = ()
    #: ``(text or value, i)``: a user's condition that means what data item ``i``'s does.
    same_units: ClassVar[Sequence[tuple[Any, int]]] = ()
    #: The data's class names, ``{field: [name, ...]}``, handed to ``learn_class_names`` before ``fit``
    #: (``{}``: data without names).
    classes: ClassVar[Classes] = {}
    #: The items of :meth:`make_missing_batch` whose condition its missing values leave out.
    missing_items: ClassVar[Sequence[int]] = ()

    def make_batch(self) -> Batch:
        """A few items of data, ``{field: (B, ...)}``, such as the conditioner reads in training."""
        raise NotImplementedError(f"{type(self).__name__} must define make_batch()")

    def make_missing_batch(self) -> Batch | None:
        """A batch with missing values (:func:`condgen.is_missing`) leaving :attr:`missing_items` without a
        condition, for a conditioner that reads them (:meth:`condgen.Conditioner.missing_values`); None: none."""
        return None

    def test_config_round_trip(self) -> None:
        check_config(self.conditioner_class, self.config)

    def test_embedding(self) -> None:
        check_embedding(self.conditioner_class, self.make_batch(), self.config, self.classes)

    def test_parsing(self) -> None:
        check_parsing(self.conditioner_class, self.make_batch(), self.texts, self.values, self.config, self.classes)

    def test_units(self) -> None:
        if not self.same_units:
            import pytest

            pytest.skip(f"{type(self).__name__} gives no same_units pairs: the units rule is not checked")
        check_units(self.conditioner_class, self.make_batch(), self.same_units, self.config, self.classes)

    def test_state_round_trip(self) -> None:
        check_state_round_trip(self.conditioner_class, self.make_batch(), self.config, self.classes)

    def test_bad_conditions(self) -> None:
        check_bad_conditions(self.conditioner_class, self.make_batch(), self.bad_texts, self.config, self.classes)

    def test_determinism(self) -> None:
        check_determinism(self.conditioner_class, self.make_batch(), self.config, self.classes)

    def test_missing_values(self) -> None:
        check_missing_values(self.conditioner_class, self.make_batch(), self.make_missing_batch(), self.missing_items,
                             self.config, self.classes)


def check_architecture(cls: type[Architecture], data_shape: Sequence[int], model: Mapping[str, Any] | None = None,
                       spatial: bool | None = None) -> None:
    """An architecture's networks keep the contract (:mod:`condgen.engine.architecture`) for items of
    ``data_shape``, built from the model config ``model`` (``condgen.ModelConfig`` fields; ``{}``: the defaults):

    - for no embedding, a flat one, and (where ``spatial``, by default for images ``(C, H, W)``) a flat and a
      spatial one of half the image's size: the encoder gives ``(mu, logvar)`` ``(N, L)`` each, the decoder
      ``(N, P, *data_shape)`` for P of 1 and 3, finite, in ``float32``;
    - the decoder's output depends on z and on every embedding, and the encoder's on x and on every embedding
      (a network that drops a condition is a bug);
    - a model without a latent (L = 0) has a decoder that takes ``z (N, 0)``;
    - every parameter of either network gets a finite gradient from a loss on its outputs.
    """
    with torch.random.fork_rng(devices=[]):  # seeded weights, so the check gives one answer; the caller's RNG kept
        torch.manual_seed(0)
        _check_architecture(cls, data_shape, model, spatial)


def _check_architecture(cls: type[Architecture], data_shape: Sequence[int], model: Mapping[str, Any] | None,
                        spatial: bool | None) -> None:
    from .runs.config import ModelConfig

    config = ModelConfig.model_validate(dict(model or {}))
    data_shape = tuple(int(s) for s in data_shape)
    arch = cls(config)
    arch.check_data(data_shape)
    spatial = len(data_shape) == 3 if spatial is None else spatial
    layouts = [(), ((3,),)]
    if spatial:
        layouts.append(((3,), (2, max(1, data_shape[1] // 2), max(1, data_shape[2] // 2))))
    gen = torch.Generator().manual_seed(0)
    n, latent = 4, 3
    for shapes in layouts:
        layout = EmbeddingLayout(shapes)
        for params in (1, 3):
            net = NetworkShapes(data_shape, layout, latent, params)
            where = f"{cls.__name__} for data {list(data_shape)}, embeddings {list(shapes)}, P = {params}"
            encoder, decoder = arch.build_encoder(net), arch.build_decoder(net)
            x = torch.rand(n, *data_shape, generator=gen)
            z = torch.randn(n, latent, generator=gen)
            e = torch.randn(n, layout.width, generator=gen)
            out = decoder(z, e)
            expected = (n, params, *data_shape)
            assert isinstance(out, Tensor) and tuple(out.shape) == expected and out.dtype == torch.float32, (
                f"{where}: the decoder gave {_shape(out)}; expected float32 {expected}")
            got = encoder(x, e)
            assert (isinstance(got, (tuple, list)) and len(got) == 2
                    and all(isinstance(t, Tensor) and tuple(t.shape) == (n, latent) for t in got)), (
                f"{where}: the encoder gave {type(got).__name__}; expected (mu, logvar), each ({n}, {latent})")
            assert torch.isfinite(out).all() and all(torch.isfinite(t).all() for t in got), f"{where}: non-finite"
            loss = out.square().mean() + sum(t.square().mean() for t in got)
            loss.backward()
            for label, module in (("encoder", encoder), ("decoder", decoder)):
                stuck = [name for name, p in module.named_parameters() if p.requires_grad and (
                    p.grad is None or not torch.isfinite(p.grad).all())]
                assert not stuck, f"{where}: the {label}'s parameters {stuck} get no finite gradient"
            with torch.no_grad():
                assert not torch.equal(decoder(z + 1, e), out), f"{where}: the decoder's output ignores z"
                assert not torch.equal(encoder(x.flip(0), e)[0], got[0]), f"{where}: the encoder ignores x"
                start = 0
                for shape in shapes:
                    size = math.prod(shape)
                    other = e.clone()
                    other[:, start:start + size] += 1
                    start += size
                    assert not torch.equal(decoder(z, other), out), (
                        f"{where}: the decoder's output ignores the embedding of shape {list(shape)}")
                    assert not torch.equal(encoder(x, other)[0], got[0]), (
                        f"{where}: the encoder ignores the embedding of shape {list(shape)}")
    net = NetworkShapes(data_shape, EmbeddingLayout(((3,),)), 0, 1)
    out = arch.build_decoder(net)(torch.zeros(n, 0), torch.randn(n, 3, generator=gen))
    assert tuple(out.shape) == (n, 1, *data_shape), (
        f"{cls.__name__}: without a latent the decoder gave {_shape(out)}; expected ({n}, 1, {list(data_shape)})")
