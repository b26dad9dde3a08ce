"""The ``Conditioner`` base class: the API a plugin author writes against.

A conditioner turns a batch of data into a condition tensor ``c`` and supplies the
network that embeds ``c`` into a vector. The engine concatenates the embeddings of all
of a model's conditioners (in the order the config lists them) into the input of the
encoder q(z|x, c) and of the decoder p(x|z, c), as in Sohn et al. (NeurIPS 2015).

**Units.** A condition is always in the user's units, whether it was read from data
(:meth:`Conditioner.condition_from_batch`), typed on the command line
(:meth:`Conditioner.parse_condition`) or given from Python
(:meth:`Conditioner.conditions_from_value`): a digit is its class number, a regression
target is its raw value. Any standardisation or encoding the network wants happens inside
the module from :meth:`Conditioner.build_embedding`, using what :meth:`Conditioner.fit`
learnt; so the three ways in always mean the same thing.

**Instances.** A model may hold several conditioners of one plugin (two ``label`` conditioners on different
data fields), each under its own instance name (``--conditioner colour=label:field=colour``). The toolkit
sets :attr:`Conditioner.name` of each conditioner it builds to that name, so ``self.name`` is what the user
calls this conditioner everywhere: ``--condition NAME=...``, ``run.sample({NAME: ...})``, the keys of
``run.conditioners`` and of ``run.conditions_from_batch``, metrics, messages.

**Missing values.** A data set marks a value its data leave out as −1 in an integer field (class indices)
and NaN in a float one (:func:`condgen.is_missing`). A conditioner whose condition
comes from such fields reports those items through :meth:`Conditioner.missing_values`; the toolkit then gives
them the model's learned "absent" embedding in place of theirs, as condition dropout does.

Shapes use ``B`` for the batch and ``K`` for a number of conditions given by a user.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor, nn

from ..common.errors import ConditionError, config_error
from ..common.schema import StrictModel

if TYPE_CHECKING:
    from ..runs.run import Run

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class ConditionerConfig(StrictModel):
    """Base of a conditioner's config. Subclass it and add fields; unknown fields are errors, and a
    number field takes only finite numbers (see :mod:`condgen.common.schema`)."""


class Conditioner(ABC):
    """One kind of condition. Subclass, set ``name`` and ``Config``, implement the abstract methods.

    Lifecycle: the engine builds the conditioner from its config; for a new run it calls
    :meth:`learn_class_names` with the data's class names and right after it :meth:`fit` once on the
    training split (or, instead of both, :meth:`load_state` when loading a checkpoint); then
    :meth:`build_embedding` once for the model, then :meth:`condition_from_batch` on every batch.
    Conditions are in the user's units throughout (see the module docstring).
    """

    #: On the class: the unique name it is registered under, ``--conditioner NAME`` (``[a-z][a-z0-9_]*``).
    #: On a conditioner the toolkit builds for a model: its instance name (``--conditioner INSTANCE=NAME``,
    #: the registered name unless the user gives another), set right after the constructor, before
    #: :meth:`learn_class_names`, :meth:`fit` or :meth:`load_state`. Name the conditioner by ``self.name``
    #: in messages and where a run's mappings are keyed (``conditions[self.name]``); ``type(self).name`` is
    #: the registered name.
    name: str
    #: The pydantic config model of this conditioner.
    Config: ClassVar[type[ConditionerConfig]] = ConditionerConfig

    def __init__(self, config: ConditionerConfig | Mapping[str, Any] | None = None) -> None:
        if config is None or isinstance(config, Mapping):
            try:
                config = self.Config.model_validate(dict(config or {}))
            except ValidationError as err:
                raise config_error(err, prefix=f"conditioner {self.name!r} config") from None
        elif not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} takes a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config

    # -- data ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def condition_shape(self) -> tuple[int, ...]:
        """Shape of one condition without the batch dimension: ``()`` for a class index."""

    def fit(self, train: Mapping[str, Tensor]) -> None:
        """Learn whatever the conditioner needs from the whole training split (e.g. statistics).

        ``train`` maps field names to tensors with the same first dimension N (a field of images too big for
        memory: a :class:`condgen.StoredArray`, which indexing reads as a tensor). Default: nothing.
        """

    def learn_class_names(self, classes: Mapping[str, Sequence[str]]) -> None:
        """Learn the names of the data's classes, where it has them; called once for a new run, right
        before :meth:`fit`, with :attr:`condgen.DataSplits.classes` of the data trained on.

        ``classes`` maps a field of class indices to its class names, index ``i`` named
        ``classes[field][i]`` (``{"label": ["T-shirt/top", "Trouser", ...]}``); it is empty for data
        without names, and it may name fields this conditioner does not read. A conditioner that
        shows or parses classes by name takes those of its field, keeps them in :meth:`state` (a loaded
        run gets them back through :meth:`load_state`, without the data), and raises
        :class:`condgen.ConditionError` if they do not fit its config: coming before :meth:`fit`, that
        error (12 names for ``num_classes = 10``, say) is what the user sees rather than fit's about a
        label out of range, so check them against the config only, with nothing from fit. Default: nothing.
        """

    @abstractmethod
    def condition_from_batch(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """The condition of each item in a batch: a tensor ``(B, ...)`` that :meth:`check_condition` accepts.

        ``batch`` maps field names (e.g. ``"image"`` ``(B, 1, 28, 28)``, ``"label"`` ``(B,)``) to tensors
        on the training device. A conditioner that draws anything at random (a mask, say) must draw
        it from ``generator``, which the engine seeds, so runs stay reproducible.
        Raise :class:`condgen.ConditionError` naming the field if the data lacks what is needed.
        """

    def missing_values(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """Which items' condition the data leave out: ``{field: (B,) bool}``, True where the item has no value
        in that data field the condition comes from (marked :func:`condgen.is_missing`: NaN in a float field,
        −1 in an integer one). Default: ``{}``, every item has its condition.

        The toolkit gives those items the model's learned "absent" embedding in place of theirs (in training,
        evaluation and everywhere conditions come from a batch), and refuses, naming the field and the count,
        data with missing values for a conditioner trained without one (``train.condition_dropout``). So
        :meth:`fit` must leave the marked items out of what it learns, and :meth:`condition_from_batch`
        must still give them a condition that :meth:`check_condition` accepts, finite (a placeholder such as
        class 0 or the fitted mean: it is replaced before it counts, but a NaN would poison the gradients
        of the embedding it passes through). Implement it where the data may lack a value; ``batch``
        is as in :meth:`condition_from_batch`.
        """
        return {}

    @abstractmethod
    def check_condition(self, c: Tensor) -> Tensor:
        """Validate a batch of conditions ``(B, ...)`` and return it in canonical dtype.

        Raise :class:`condgen.ConditionError` naming the bad value, its shape, and what is allowed.
        """

    @abstractmethod
    def parse_condition(self, text: str) -> Tensor:
        """Parse what a user typed after ``NAME=`` on the command line into ``K`` conditions ``(K, ...)``.

        Several conditions (e.g. ``label=0,1,2``) give one row each in a sample grid.
        Raise :class:`condgen.ConditionError` naming the text and the allowed form.
        """

    def conditions_from_value(self, value: Any) -> Tensor:
        """Turn a Python value (``run.sample({NAME: value})``) into ``K`` conditions ``(K, ...)``.

        The default: a ``str`` is parsed as on the command line (:meth:`parse_condition`); anything
        else (a number, a list, an array, a tensor) becomes a tensor, which is one condition if it
        has exactly the dimensions of :attr:`condition_shape` and a batch ``(K, ...)`` if it has one
        more; then :meth:`check_condition`. Override it where a condition may come in several
        shapes (an image, or a stack of them). Raise :class:`condgen.ConditionError` naming the value.
        """
        if isinstance(value, str):
            return self.parse_condition(value)
        c = tensor_from_value(value, f"condition {self.name!r}")
        if c.dim() == len(self.condition_shape):
            c = c.unsqueeze(0)
        return self.check_condition(c)

    def given_part(self, c: Tensor) -> Tensor | None:
        """Which elements of x the conditions ``(B, ...)`` already give: ``(B, *data_shape)``, 1 = given.

        The engine scores only the rest: the likelihood terms, the training loss and evaluation
        leave given elements out (an inpainting conditioner gives the observed pixels). Default:
        None, nothing is given and all of x is scored.
        """
        return None

    def given_values(self, c: Tensor) -> Tensor | None:
        """The values of the elements :meth:`given_part` marks: ``(B, *data_shape)`` (others are ignored).

        Samples keep them exactly (the observed pixels of an inpainting condition). Default: None.
        """
        return None

    def example_conditions(self, test: Mapping[str, Tensor], generator: torch.Generator) -> Tensor | None:
        """Conditions ``(K, ...)`` for the rows of a run's ``samples.png``; None for none.

        ``test`` is the test split (``{field: (N, ...)}``), for conditions that are drawn from data
        (a masked test image); draw any randomness from ``generator``.
        """
        return None

    def describe_condition(self, c: Tensor) -> str:
        """A short human label of one condition ``(...)``, for picture rows and logs.

        Default: its values, up to 8 of them (``0.5,-1``); a larger one by its shape (``(1, 28, 28)``).
        """
        if c.numel() > 8:
            return str(tuple(c.shape))
        return ",".join(f"{v:g}" for v in c.flatten().tolist())

    def condition_picture(self, c: Tensor) -> Tensor | None:
        """One condition ``(...)`` as an image ``(C, H, W)`` in [0, 1], shown at the head of its row
        of samples (the observed part of an image, say); None for a text label only."""
        return None

    def latent_colour(self, c: Tensor) -> Tensor | None:
        """A value per item ``(B,)`` to colour ``latent.png`` by, from conditions ``(B, ...)``: an
        integer tensor for categories (a class), a float one for a colour scale; None for none."""
        return None

    def evaluate(self, run: Run, test: Mapping[str, Tensor]) -> dict[str, float]:
        """Extra figures for ``condgen evaluate`` on the test split (``{field: (N, ...)}``). Default: none.

        Use the run's public methods (``run.conditions_from_batch``, ``run.terms``,
        ``run.log_likelihood``) and the helpers ``condgen.iter_batches``,
        ``condgen.seeded_generator`` and ``condgen.EVAL_SEED``.
        """
        return {}

    def sampling_command(self, run_dir: str, conditions: str) -> str | None:
        """The command that draws samples of a run conditioned on this conditioner, printed after training:
        ``run_dir`` is the run's directory, ``conditions`` the ``--condition NAME=...`` flags of the run's other
        conditioners ("" for none). Default None: ``condgen sample RUN_DIR --condition NAME=... --out
        samples.png``, this conditioner's value among the flags. A conditioner whose values are not typed (an
        image and its mask) names its own command."""
        return None

    # -- embedding ----------------------------------------------------------------------
    @property
    @abstractmethod
    def embed_dim(self) -> int:
        """Width E of the embedding vector this conditioner contributes (the channels of a spatial one)."""

    @property
    def spatial_size(self) -> tuple[int, int] | None:
        """``(H, W)`` for a **spatial** embedding: feature maps ``(B, embed_dim, H, W)``, such as the observed
        part of an image. A convolutional architecture concatenates them as channels at every resolution (resized
        where theirs is not the image's), an MLP takes them flattened. Default None: a flat vector."""
        return None

    @property
    def embed_shape(self) -> tuple[int, ...]:
        """What one item's embedding is: ``(embed_dim,)``, or ``(embed_dim, H, W)`` with a :attr:`spatial_size`."""
        size = self.spatial_size
        return (self.embed_dim,) if size is None else (self.embed_dim, *size)

    @abstractmethod
    def build_embedding(self) -> nn.Module:
        """A fresh module mapping a condition tensor ``(B, ...)`` to a float tensor ``(B, *embed_shape)``:
        ``(B, embed_dim)``, or ``(B, embed_dim, H, W)`` for a spatial embedding.

        Its parameters (if any) are trained with the model and saved in its checkpoint.
        """

    # -- checkpoint ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-serialisable state learnt by :meth:`fit`, stored in the checkpoint. Default: none."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state` returned."""

    # -- helpers for subclasses ---------------------------------------------------------
    def conditioner_flag(self, settings: str = "") -> str:
        """The ``--conditioner`` flag that gives this conditioner ``settings`` (``"num_classes=3"``), under its
        instance name where that is not the registered one: ``--conditioner colour=label:num_classes=3``.
        For the fix a message offers."""
        registered = type(self).name
        head = registered if self.name == registered else f"{self.name}={registered}"
        return f"--conditioner {head}:{settings}" if settings else f"--conditioner {head}"

    def require_field(self, batch: Mapping[str, Tensor], field: str) -> Tensor:
        """``batch[field]``, or a ConditionError that lists the fields the data does have."""
        if field not in batch:
            raise ConditionError(
                f"conditioner {self.name!r} needs data field {field!r}, but the data has "
                f"{sorted(batch)}; set its config field to one of those"
            )
        return batch[field]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def check_conditioner_class(obj: object) -> type[Conditioner]:
    """Raise TypeError saying what is wrong if ``obj`` is not a usable Conditioner subclass."""
    if not (isinstance(obj, type) and issubclass(obj, Conditioner)):
        raise TypeError(f"registered {obj!r}, which is not a subclass of condgen.Conditioner")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise TypeError(f"{obj.__name__}.name must match {NAME_PATTERN.pattern}, got {name!r}")
    if hasattr(nn.ModuleDict(), name) or hasattr(nn.ParameterDict(), name):  # the model keys modules by it
        raise TypeError(f"{obj.__name__}.name {name!r} is reserved (an attribute of torch.nn.Module); choose another")
    if not (isinstance(obj.Config, type) and issubclass(obj.Config, BaseModel)):
        raise TypeError(f"{obj.__name__}.Config must be a pydantic model, got {obj.Config!r}")
    if "run_methods" in dir(obj):  # removed in condgen 0.3: refused, so it is not ignored without a word
        raise TypeError(f"{obj.__name__}.run_methods is no longer supported (condgen 0.3 dropped methods that "
                        "conditioners add to runs); offer a function that takes the run instead, as "
                        "condgen_inpaint.inpaint(run, image, mask, num) does")
    abstract = sorted(getattr(obj, "__abstractmethods__", ()))
    if abstract:
        raise TypeError(f"{obj.__name__} does not implement {', '.join(abstract)}")
    return obj


#: Unsigned integer types torch holds but barely computes with; conditions in them are widened to int64.
_WIDENED = {getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)}


def as_tensor(value: Any) -> Tensor:
    """Turn a Python number, list or array into a dense tensor with values (a sparse one is made dense,
    rare unsigned types become int64); ValueError for what holds no values (a ``meta`` tensor) or
    numbers no tensor holds."""
    try:
        c = value if isinstance(value, Tensor) else torch.as_tensor(value)
    except OverflowError as exc:
        raise ValueError(f"a number too large for a tensor ({exc})") from None
    if c.is_meta:
        raise ValueError("a tensor on the meta device holds no values")
    if c.layout != torch.strided:
        c = c.to_dense()
    return c.to(torch.int64) if c.dtype in _WIDENED else c


def describe_value(value: Any) -> str:
    """A user's value as an error message shows it: its repr cut to 80 characters, a tensor or an array by its
    shape and dtype (``an array (0, 1, 28, 28) float32``)."""
    if isinstance(value, Tensor):
        return f"a tensor {tuple(value.shape)} {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"an array {tuple(value.shape)} {value.dtype}"
    return f"{value!r:.80}"


def value_fault(value: Any, *, bools: bool = False) -> str | None:
    """What makes ``value`` no condition value whatever the conditioner, in words, or None: ``None``, a bool
    among numbers (``[10, True]``; with ``bools`` a mask's True/False are values), complex numbers (whose
    imaginary part would be dropped), a tensor on the ``meta`` device (no values), or an empty batch. Text and
    anything else are for the conditioner to read."""
    if value is None:
        return "None is no condition"
    if isinstance(value, Tensor) or hasattr(value, "dtype") and hasattr(value, "shape"):  # a tensor or an array
        dtype = str(getattr(value, "dtype", ""))
        if isinstance(value, Tensor) and value.is_meta:
            return "a tensor on the meta device holds no values"
        if "complex" in dtype:
            return f"it holds complex numbers ({dtype}); a condition is real: give its real part (.real) if meant"
        if "bool" in dtype and not bools:
            return f"it holds bools ({dtype}); a bool is not a number here: give 0/1 as numbers if meant"
        if len(value.shape) and value.shape[0] == 0:
            return f"it is an empty batch, shape {tuple(value.shape)}: give at least one condition"
        return None
    stack, seen = [value], 0
    while stack and seen < 100_000:  # nested lists, read without converting: a big one is the conversion's
        item = stack.pop()
        seen += 1
        if isinstance(item, (bool, np.bool_)) or isinstance(item, (Tensor, np.ndarray)) and item.dtype in (
                torch.bool, np.bool_):
            if not bools:
                return f"{item!r} is a bool, not a number here: give 0 or 1 if meant"
        elif isinstance(item, (Tensor, np.ndarray)):
            if isinstance(item, Tensor) and item.is_meta:
                return "it holds a tensor on the meta device, which holds no values"
            if item.dtype.is_complex if isinstance(item, Tensor) else np.iscomplexobj(item):
                return f"it holds complex numbers ({item.dtype}); a condition is real"
        elif isinstance(item, complex):
            return f"{item!r} is a complex number; a condition is real"
        elif item is None:
            return "it holds None"
        elif isinstance(item, (list, tuple)):
            if not item and item is value:
                return "it is an empty list: give at least one condition"
            stack.extend(item)
        elif isinstance(item, Mapping) and item is value:  # {"image": ..., "mask": ...}: its values, one level
            stack.extend(item.values())
    return None


def tensor_from_value(value: Any, what: str, *, bools: bool = False) -> Tensor:
    """The core's conversion of a user's Python value (a number, a list, an array, a tensor) into a dense tensor,
    for ``what`` (``"condition 'label'"``, ``"the image"``): a :class:`condgen.ConditionError` naming the value and
    what is wrong, for what :func:`value_fault` refuses, text, ragged lists and anything torch cannot hold.
    ``bools``: True/False are values (a mask's). Every condition value from Python passes through it, so a
    conditioner's own ``conditions_from_value`` may use it and get the same rules."""
    if isinstance(value, str):
        raise ConditionError(f"{what} cannot be made from the text {value!r}: give numbers (an array or a tensor); "
                             "a file must be read first")
    fault = value_fault(value, bools=bools)
    if fault is not None:
        raise ConditionError(f"{what} cannot be made from {describe_value(value)}: {fault}")
    try:
        c = as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConditionError(f"{what} cannot be made from {describe_value(value)} ({type(value).__name__}): "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if c.dtype.is_complex:
        raise ConditionError(f"{what} cannot be made from {describe_value(value)}: it holds complex numbers")
    if c.dtype == torch.bool and not bools:
        raise ConditionError(f"{what} cannot be made from {describe_value(value)}: a bool is not a number here")
    return c
