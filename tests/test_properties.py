"""Generated bad input (issue "Reliability: no internal errors on bad input").

The rule: every input either works or raises the toolkit's own error, :class:`condgen.CondgenError`
(or a subclass); never any other exception. Hypothesis generates the inputs, in five families:

1. config dicts for ``RunConfig.parse``: valid-looking sections mixed with random JSON-like values and
   field names, and conditioner entries (``label``, ``inpaint``, ``regression`` and unknown names); also
   that a bool or a non-finite float is refused where a number is wanted, and that a parsed config
   round-trips through ``model_dump(mode="json")``;
2. config files: random bytes, text, and JSON, YAML and TOML documents (from the dicts of 1, broken,
   or not UTF-8) through ``read_config_file`` and ``RunConfig.parse``;
3. condition strings: ``run.parse_conditions``, ``run.check_conditions`` and ``condgen.SampleRows`` on
   tiny trained runs (the real ``label`` and ``regression`` conditioners on the toy data);
4. Python values: ``run.sample(conditions, num=..., seed=...)`` with arbitrary conditions (numbers,
   text, lists, dicts, tensors and arrays of any dtype), ``num`` and ``seed``;
5. checkpoints: a real checkpoint with its JSON metadata or tensors mutated, or its header garbage,
   through ``condgen.load_run`` (and ``sample`` when it loads).

An exception of any other type fails the test and Hypothesis reports the smallest input it found.
Inputs that once found a bug are kept as explicit ``@example``s, so they are tried on every run. The
profile ``condgen-properties`` bounds the examples and is derandomized, so runs are reproducible; it is
applied per test (not loaded globally), so other test modules keep their own settings.
"""

from __future__ import annotations

import copy
import json
import math
import operator
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import condgen
from condgen import CondgenError, ConfigError, RunConfig
from condgen.runs.checkpoint import CHECKPOINT_NAME
from condgen.runs.config import read_config_file
from condgen.plugin.registry import get_plugin_manager

from helpers import ToyData

settings.register_profile(
    "condgen-properties",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,  # nothing written into the repository; derandomize makes runs reproducible anyway
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    report_multiple_bugs=False,  # one failure per test, shrunk: keeps a failing run short
)
PROFILE = settings.get_profile("condgen-properties")
#: Examples per test: the pure-Python families are cheap, the ones that sample or load a model less so.
CHEAP = settings(PROFILE, max_examples=100)
MODEL = settings(PROFILE, max_examples=100)
COSTLY = settings(PROFILE, max_examples=40)

BUILTIN_CONDITIONERS = ["label", "inpaint", "regression"]
HUGE_INTS = [2**31, 2**63, 2**64, 2**70, -(2**63) - 1, 10**30, -(10**30), 10**400, -(10**400)]
NON_FINITE = [math.inf, -math.inf, math.nan]


def works_or_condgen_error(call, *args, **kwargs) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, error)`` for a CondgenError; any other exception propagates (a bug)."""
    what = getattr(call, "__name__", "call")
    try:
        result = call(*args, **kwargs)
    except CondgenError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        event(f"{what}: refused ({type(err).__name__})")
        return False, err
    event(f"{what}: works")
    return True, result


# == strategies: JSON-like values ===================================================================
names = st.text(min_size=0, max_size=8)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


def either(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A valid-looking value for a field, or anything."""
    return st.one_of(valid, valid, json_values)


widths = st.lists(st.integers(min_value=-2, max_value=70000), max_size=3)
probability = st.floats(min_value=-0.5, max_value=1.5)

MODEL_FIELDS = {
    "latent_dim": st.integers(-1, 5000),
    "hidden": widths,
    "decoder_hidden": st.none() | widths,
    "activation": st.sampled_from(["relu", "elu", "gelu", "silu", "tanh", "leaky_relu", "sigmoid", "RELU"]),
    "likelihood": st.sampled_from(["bernoulli", "gaussian", "poisson", "gaussian-pixel", "logistic-mixture:3",
                                   "logistic-mixture:0", "logistic-mixture:", "bernoulli:2"]),
    "gaussian_std": st.none() | st.floats(-1, 2),
    "gaussian_min_std": st.none() | st.floats(-1, 2),
    "prior": st.sampled_from(["standard", "conditional", "vamp"]),
    "prior_hidden": st.none() | widths,
}
DATA_FIELDS = {
    "dataset": st.sampled_from(["toy", "mnist", "npz", "nope", ""]),
    "data_dir": st.none() | st.text(max_size=12) | st.sampled_from(["~/data", "~nosuchuser/data", "/", "."]),
    "x_field": st.sampled_from(["image", "x", ""]),
    "train_limit": st.none() | st.integers(-3, 10**6),
    "test_limit": st.none() | st.integers(-3, 10**6),
}
TRAIN_FIELDS = {
    "epochs": st.integers(-2, 100),
    "batch_size": st.integers(-2, 10**6),
    "lr": st.floats(-1, 1),
    "optimizer": st.sampled_from(["adam", "adamw", "sgd"]),
    "weight_decay": st.floats(-1, 1),
    "lr_schedule": st.sampled_from(["constant", "cosine", "linear"]),
    "objective": st.sampled_from(["elbo", "hybrid", "iwae"]),
    "gsnn_weight": st.none() | st.floats(-0.5, 1.5),
    "condition_dropout": probability | st.dictionaries(st.sampled_from(BUILTIN_CONDITIONERS + ["x"]), probability,
                                                       max_size=2),
    "seed": st.integers(-1, 2**65),
    "device": st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:x", "auto", "gpu", "cuda:"]),
    "eval_batch_size": st.integers(-1, 10**4),
}
CONDITIONER_FIELDS = {  # label, inpaint and regression's own fields, all offered to every conditioner
    "num_classes": st.integers(-1, 12),
    "field": st.sampled_from(["label", "image", "value", ""]),
    "embedding": st.sampled_from(["onehot", "learned", "mlp", "conv", "word2vec"]),
    "embed_dim": st.none() | st.integers(-1, 40),
    "masks": st.lists(st.sampled_from(["quadrants:1", "quadrants:3", "bottom-half", "centre", "random", "quadrants:x",
                                       "quadrants:99", ""]) | st.text(max_size=8), max_size=3),
    "weights": st.none() | st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    "hidden": st.integers(-1, 600),
    "targets": st.lists(st.sampled_from(["value", "ink", "slant", "label", "nope"]), max_size=3) | st.just("ink"),
    "image_field": st.sampled_from(["image", "label", "nope"]),
}


def section(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """A dict with some of ``fields`` (each valid-looking or anything), sometimes with a random extra field."""
    known = st.fixed_dictionaries({}, optional={name: either(s) for name, s in fields.items()})
    extra = st.one_of(st.just({}), st.just({}), st.dictionaries(names, json_values, max_size=2))
    return st.builds(lambda a, b: {**b, **a}, known, extra)


conditioner_entries = st.one_of(
    st.fixed_dictionaries(
        {"name": st.sampled_from(BUILTIN_CONDITIONERS) | names | st.sampled_from(["Label", "sign", "left"])},
        optional={"config": either(section(CONDITIONER_FIELDS))},
    ),
    st.dictionaries(st.sampled_from(["name", "config", "extra"]), json_values, max_size=3),
    json_values,
)
config_dicts = st.builds(
    lambda a, b: {**b, **a},
    st.fixed_dictionaries({}, optional={
        "model": either(section(MODEL_FIELDS)),
        "data": either(section(DATA_FIELDS)),
        "train": either(section(TRAIN_FIELDS)),
        "conditioners": either(st.lists(conditioner_entries, max_size=3)),
    }),
    st.one_of(st.just({}), st.just({}), st.dictionaries(names, json_values, max_size=2)),
)
config_inputs = st.one_of(config_dicts, config_dicts, config_dicts, json_values)  # also not a dict at the top


@st.composite
def valid_configs(draw) -> dict:
    """Config dicts that must parse (the cross-field rules respected)."""
    model: dict[str, Any] = {}
    conditioners: list[dict] = []
    for name in draw(st.lists(st.sampled_from(BUILTIN_CONDITIONERS), unique=True, max_size=3)):
        if name == "label":
            spec = draw(st.sampled_from([{"num_classes": 2}, {"num_classes": 3, "embedding": "learned",
                                                                "embed_dim": 5}, {}]))
        elif name == "inpaint":
            spec = draw(st.sampled_from([{}, {"masks": ["bottom-half"], "hidden": 8, "embed_dim": 4}]))
        else:
            spec = {"targets": draw(st.lists(st.sampled_from(["value", "ink", "slant"]), min_size=1, unique=True))}
        conditioners.append({"name": name, "config": spec})
    if draw(st.booleans()):
        model["latent_dim"] = draw(st.integers(1 if not conditioners else 0, 64))
    if draw(st.booleans()):
        model["hidden"] = draw(st.lists(st.integers(1, 65536), max_size=3))
    if draw(st.booleans()):
        model["decoder_hidden"] = draw(st.lists(st.integers(1, 512), max_size=2))
    model["activation"] = draw(st.sampled_from(["relu", "elu", "gelu", "silu", "tanh", "leaky_relu"]))
    if draw(st.booleans()):
        model["likelihood"] = "gaussian"
        model["gaussian_std"] = draw(st.none() | st.floats(1e-3, 10))
    elif draw(st.booleans()):
        model["likelihood"] = draw(st.sampled_from(["gaussian-pixel", "gaussian-shared", "logistic-mixture:4"]))
        if model["likelihood"] != "logistic-mixture:4":
            model["gaussian_min_std"] = draw(st.none() | st.floats(1e-4, 1))
    if conditioners and model.get("latent_dim", 2) > 0 and draw(st.booleans()):
        model["prior"] = "conditional"
        model["prior_hidden"] = draw(st.none() | st.lists(st.integers(1, 64), max_size=2))
    data = draw(st.fixed_dictionaries({}, optional={
        "dataset": st.sampled_from(["toy", "mnist", "npz"]),
        "data_dir": st.none() | st.text(max_size=10).filter(lambda d: not d.startswith("~")),  # ~user: see above
        "x_field": st.sampled_from(["image", "x"]),
        "train_limit": st.none() | st.integers(1, 10**9),
        "test_limit": st.none() | st.integers(1, 10**9),
    }))
    train = draw(st.fixed_dictionaries({}, optional={
        "epochs": st.integers(1, 10**6),
        "batch_size": st.integers(1, 10**6),
        "lr": st.floats(1e-8, 10),
        "optimizer": st.sampled_from(["adam", "adamw"]),
        "weight_decay": st.floats(0, 1),
        "lr_schedule": st.sampled_from(["constant", "cosine"]),
        "seed": st.integers(0, 2**64 - 1),
        "device": st.sampled_from(["cpu", "cuda", "cuda:1", "auto"]),
        "eval_batch_size": st.integers(1, 10**5),
    }))
    if model.get("latent_dim", 2) > 0 and draw(st.booleans()):
        train["objective"] = "hybrid"
        if draw(st.booleans()):
            train["gsnn_weight"] = draw(st.floats(0, 1, exclude_min=True))
    if conditioners and draw(st.booleans()):
        train["condition_dropout"] = draw(
            st.floats(0, 1, exclude_max=True)
            | st.dictionaries(st.sampled_from([c["name"] for c in conditioners]), st.floats(0, 1, exclude_max=True)))
    config = {"conditioners": conditioners, "model": model, "data": data, "train": train}
    return {k: v for k, v in config.items() if v or draw(st.booleans())}


# == 1. configs as dicts =============================================================================
def nested(depth: int) -> list:
    """``[[[...]]]``, ``depth`` deep."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return [value]


class Briefly(dict):
    """A dict shown by a short description (printing a deeply nested one would itself recurse too deep)."""

    def __init__(self, description: str, value: dict) -> None:
        super().__init__(value)
        self.description = description

    def __repr__(self) -> str:
        return self.description


def cyclic() -> list:
    value: list = [8]
    value.append(value)
    return value


@CHEAP
@given(data=config_inputs)
# Inputs found by generation (here or in longer random runs), kept so that they are always tried: a ~user
# that does not exist, a list deeper than Python's recursion limit, and a list that holds itself.
@example(data={"data": {"data_dir": "~nosuchuser/data"}})
@example(data=Briefly("{'model': {'hidden': [[[...]]] 1200 deep}}", {"model": {"hidden": nested(1200)}}))
@example(data={"model": {"hidden": cyclic()}})  # as a YAML alias inside its own anchor gives
def test_any_config_dict_parses_or_is_refused(data):
    ok, config = works_or_condgen_error(RunConfig.parse, data)
    if ok:
        assert isinstance(config, RunConfig)
        assert RunConfig.parse(config.model_dump(mode="json")) == config


@CHEAP
@given(data=valid_configs())
def test_a_valid_config_parses_and_round_trips(data):
    config = RunConfig.parse(data)
    dumped = config.model_dump(mode="json")
    again = RunConfig.parse(json.loads(json.dumps(dumped)))  # through JSON text, as config.json is
    assert again == config and again.model_dump(mode="json") == dumped


#: Where a number is wanted: (path, the field's name as the message shows it). A path item "label"
#: under "conditioners" means that conditioner's config.
NUMBER_FIELDS = [
    (("train", "batch_size"), "train.batch_size"),
    (("train", "epochs"), "train.epochs"),
    (("train", "lr"), "train.lr"),
    (("train", "seed"), "train.seed"),
    (("train", "weight_decay"), "train.weight_decay"),
    (("train", "condition_dropout"), "train.condition_dropout"),
    (("model", "latent_dim"), "model.latent_dim"),
    (("model", "hidden", 0), "model.hidden"),
    (("model", "hidden", 1), "model.hidden"),
    (("data", "train_limit"), "data.train_limit"),
    (("conditioners", "label", "embed_dim"), "embed_dim"),
    (("conditioners", "label", "num_classes"), "num_classes"),
]
FLOAT_FIELDS = [
    (("train", "lr"), "train.lr"),
    (("train", "weight_decay"), "train.weight_decay"),
    (("train", "condition_dropout"), "train.condition_dropout"),
    (("train", "condition_dropout", "label"), "train.condition_dropout"),
    (("train", "gsnn_weight"), "train.gsnn_weight"),
    (("model", "gaussian_std"), "model.gaussian_std"),
    (("model", "gaussian_min_std"), "model.gaussian_min_std"),
]


def with_value(base: dict, path: tuple, value: Any) -> dict:
    """``base`` (a valid config dict) with ``value`` at ``path``, and what the path needs around it:
    a label conditioner (learned embedding) for its config, a hybrid objective for gsnn_weight, ..."""
    config = copy.deepcopy(base)
    if path[0] == "conditioners":
        config["conditioners"] = [c for c in config.get("conditioners", []) if c["name"] != "label"]
        config["conditioners"].insert(0, {"name": "label", "config": {"num_classes": 3, "embedding": "learned",
                                                                      "embed_dim": 4, path[2]: value}})
        return config
    sect = config.setdefault(path[0], {})
    if path == ("model", "gaussian_std"):
        sect["likelihood"] = "gaussian"
    if path == ("model", "gaussian_min_std"):
        sect["likelihood"] = "gaussian-shared"
        sect.pop("gaussian_std", None)
    if path == ("train", "gsnn_weight"):
        sect["objective"] = "hybrid"
        config.setdefault("model", {}).pop("latent_dim", None)
    if path[1] == "condition_dropout":
        config["conditioners"] = [{"name": "label", "config": {"num_classes": 2}}]
        sect.pop("condition_dropout", None)
    if path[1] == "hidden":
        sect["hidden"] = [8, 8]
        sect["hidden"][path[2]] = value
    elif len(path) == 3:
        sect[path[1]] = {path[2]: value}
    else:
        sect[path[1]] = value
    return config


@CHEAP
@given(base=valid_configs(), field=st.sampled_from(NUMBER_FIELDS), flag=st.booleans())
def test_a_bool_where_a_number_is_wanted_is_refused(base, field, flag):
    path, shown = field
    config = with_value(base, path, flag)
    note(f"config: {config!r}")
    with pytest.raises(ConfigError) as err:
        RunConfig.parse(config)
    message = str(err.value)
    assert shown in message and ("bool" in message or f"= {flag}" in message), message


@CHEAP
@given(base=valid_configs(), field=st.sampled_from(FLOAT_FIELDS), value=st.sampled_from(NON_FINITE))
def test_a_non_finite_float_is_refused(base, field, value):
    path, shown = field
    config = with_value(base, path, value)
    note(f"config: {config!r}")
    with pytest.raises(ConfigError) as err:
        RunConfig.parse(config)
    assert shown in str(err.value), str(err.value)


# == 2. config files ===================================================================================
def toml_key(key: str) -> str:
    return key if key and re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str | None:
    """TOML for a JSON-like value; None for what TOML cannot say (null), which is left out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(v for v in map(toml_value, value) if v is not None) + "]"
    items = [(k, toml_value(v)) for k, v in value.items()]
    return "{" + ", ".join(f"{toml_key(k)} = {v}" for k, v in items if v is not None) + "}"


def toml_document(data: dict) -> str:
    lines = [(k, toml_value(v)) for k, v in data.items()]
    return "".join(f"{toml_key(k)} = {v}\n" for k, v in lines if v is not None)


TRICKY_DOCUMENTS = {
    ".yaml": [
        "model: &a {hidden: *a}\n",  # an alias inside its own anchor: a recursive dict
        "model:\n  hidden: &h [8, *h]\n",  # a recursive list where a list of numbers is wanted
        "a: &a [*a, *a]\nmodel: {hidden: [1]}\n",
        "train: {lr: .nan, seed: 0x10, epochs: 0o7, batch_size: 1_000}\n",
        "train: {lr: !!float '1e-3', device: !!binary aGVsbG8=}\n",
        "data: {data_dir: 2001-12-14}\n",
        "conditioners: !!set {label: null}\n",
        "{[1, 2]: 3}\n",
        "? [a]\n: b\n",
        "model: {hidden: !!python/tuple [1, 2]}\n",
        "--- a\n--- b\n",
        "train: {epochs: 1e400}\n",
        "&x a: *x\n",
    ],
    ".json": [
        '{"train": {"lr": NaN, "seed": Infinity}}',
        '{"train": {"epochs": 1e400, "batch_size": -1e400}}',
        '{"model": {"hidden": [' + "9" * 5000 + "]}}",
        '{"model": {"hidden": ' + "[" * 900 + "]" * 900 + "}}",
        '{"model": {"hidden": ' + "[" * 100_000 + "]" * 100_000 + "}}",
        '{"conditioners": [{"name": "label", "config": ' + '{"a":' * 900 + "1" + "}" * 900 + "}]}",
        '{"model": {"hidden": [8]}, "model": 5}',
        '\ufeff{"model": {}}',
        '{"a": "\\ud800"}',
    ],
    ".toml": [
        "train = {lr = nan, seed = 18446744073709551616}\n",
        "[data]\ndata_dir = 1979-05-27T07:32:00Z\n",
        "[[conditioners]]\nname = 'label'\n[conditioners.config]\nnum_classes = inf\n",
        "model.hidden = [1, [2]]\n",
        "a = 1\na = 2\n",
    ],
}


@st.composite
def documents(draw) -> tuple[str, bytes]:
    """``(suffix, file contents)``: well-formed, broken, tricky or random documents."""
    suffix = draw(st.sampled_from([".json", ".yaml", ".yml", ".toml", ".txt", ".JSON", ".Yaml", ""]))
    kind = draw(st.sampled_from(["json", "yaml", "toml", "tricky", "text", "bytes", "not utf-8", "truncated"]))
    data = draw(config_inputs)
    if kind in ("json", "truncated"):
        text = json.dumps(data)
    elif kind == "yaml":
        text = yaml.safe_dump(data)
    elif kind == "toml":
        text = toml_document(data if isinstance(data, dict) else {"value": data})
    elif kind == "tricky":
        text = draw(st.sampled_from(TRICKY_DOCUMENTS[draw(st.sampled_from(sorted(TRICKY_DOCUMENTS)))]))
    elif kind == "text":
        text = draw(st.text(max_size=60))
    else:
        text = ""
    raw = text.encode("utf-8")
    if kind == "truncated":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif kind == "bytes":
        raw = draw(st.binary(max_size=60))
    elif kind == "not utf-8":
        raw = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]))
        raw = json.dumps(data).encode()[:10] + raw + b'"}'
    return suffix, raw


def with_tricky_documents(test):
    """Every document of TRICKY_DOCUMENTS, as an explicit example of ``test`` (always tried)."""
    for suffix, docs in reversed(TRICKY_DOCUMENTS.items()):
        for doc in reversed(docs):
            test = example(doc=(suffix, doc.encode("utf-8", "surrogatepass")))(test)
    return test


@CHEAP
@given(doc=documents())
@with_tricky_documents
def test_any_config_file_is_read_or_refused(doc):
    suffix, raw = doc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config{suffix}"
        path.write_bytes(raw)
        ok, data = works_or_condgen_error(read_config_file, path)
        if ok:
            assert isinstance(data, dict)
            works_or_condgen_error(RunConfig.parse, data)


@CHEAP
@given(data=config_dicts, form=st.sampled_from([".json", ".yaml", ".yml", ".toml"]))
def test_a_well_formed_document_holding_a_mapping_is_read(data, form):
    """The reader must not refuse what it can read: any JSON, YAML or TOML document with a mapping at the top."""
    if form == ".json":
        text = json.dumps(data)
    elif form == ".toml":
        text = toml_document(data)
    else:
        text = yaml.safe_dump(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config{form}"
        path.write_text(text, encoding="utf-8")
        read = read_config_file(path)
        assert isinstance(read, dict)
        assert sorted(read) == sorted(k for k in data if form != ".toml" or data[k] is not None)
        works_or_condgen_error(RunConfig.parse, read)


# == trained runs (module-scoped) ========================================================================
LABEL = {"name": "label", "config": {"num_classes": 2}}
REGRESSION = {"name": "regression", "config": {"targets": ["value"], "hidden": 4, "embed_dim": 2}}
DATA_SHAPE = (1, 6, 6)


@pytest.fixture(scope="module")
def toy_data_plugin():
    """The toy data set, registered for this module's runs (conftest's fixtures are function-scoped)."""
    pm = get_plugin_manager()
    name = "toy-data-properties"
    pm.register(ToyData(), name=name)
    yield
    pm.unregister(name=name)


class Runs(dict):
    """The module's runs by name, shown briefly in Hypothesis's reports."""

    def __repr__(self) -> str:
        return f"<tiny runs {', '.join(self)}>"


@pytest.fixture(scope="module")
def runs(toy_data_plugin, tmp_path_factory) -> Runs:
    """Tiny one-epoch runs: on the label, on the toy value (regression), and on both (label may be left out)."""
    base = tmp_path_factory.mktemp("property-runs")

    def train(name: str, conditioners: list[dict], **train: Any) -> condgen.Run:
        config = RunConfig.parse({
            "conditioners": conditioners, "model": {"latent_dim": 2, "hidden": [8]}, "data": {"dataset": "toy"},
            "train": {"epochs": 1, "batch_size": 64, "device": "cpu", **train}})
        run = condgen.train(config, base / name, pictures=False, progress=False, log=lambda s: None)
        assert run.directory == base / name
        return run

    return Runs({
        "label": train("label", [LABEL]),
        "regression": train("regression", [REGRESSION]),
        "both": train("both", [LABEL, REGRESSION], condition_dropout={"label": 0.2}),
    })


RUN_NAMES = st.sampled_from(["label", "regression", "both"])


# == 3. condition strings ==================================================================================
def joined(parts: st.SearchStrategy, sep: str = ",") -> st.SearchStrategy:
    return st.lists(parts, min_size=1, max_size=4).map(sep.join)


number_texts = st.one_of(
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "all", "ALL", "1.0", "1e3", "1e309", "-1e309", "nan", "inf", "0x1", "1_0", "\u0663",
                     "\u00b2", "+1", " 1 ", "1e308", "3.5e38", "-3.5e38..3.5e38/3", "9" * 5000, "1/2", "0..1", "0..1/3",
                     "0..1/1", "0..1/101", "0..1/x",
                     "1..0/5", "nan..1/3", "0..inf/3", "0..1/99999999999999999999", "..", "./3"]),
    st.text(max_size=6),
)
label_texts = joined(number_texts)
regression_texts = joined(st.one_of(
    st.builds(lambda name, value: f"{name}:{value}", st.sampled_from(["value", "value ", "ink", "", "VALUE"]),
              number_texts),
    st.text(max_size=6),
))
condition_texts = st.one_of(
    label_texts.map(lambda t: f"label={t}"),
    regression_texts.map(lambda t: f"regression={t}"),
    st.builds(lambda n, t: f"{n}={t}", st.sampled_from(["label", "regression", " label ", "", "sign", "Label"])
              | names, st.text(max_size=10)),
    st.text(max_size=12),  # usually no "="
)


def well_formed_texts(which: str) -> st.SearchStrategy:
    """One ``NAME=VALUE`` for each conditioner of run ``which``, in any order, the VALUE often valid and
    sometimes anything; the "both" run's label (trained with condition dropout) may be left out."""
    label = st.one_of(st.integers(0, 1).map(str), st.just("all"), joined(st.integers(0, 1).map(str)), label_texts)
    value = st.one_of(
        st.floats(-3, 3).map(lambda v: f"value:{v}"),
        st.builds(lambda a, b, n: f"value:{a}..{b}/{n}", st.floats(-3, 3), st.floats(-3, 3), st.integers(2, 100)),
        regression_texts,
    )
    parts = []
    if which in ("label", "both"):
        part = label.map(lambda t: [f"label={t}"])
        parts.append(part | st.just([]) if which == "both" else part)
    if which in ("regression", "both"):
        parts.append(value.map(lambda t: [f"regression={t}"]))
    return st.tuples(*parts).map(lambda lists: sum(lists, [])).flatmap(st.permutations)


def run_and(draw_for) -> st.SearchStrategy:
    """``(run name, something drawn for that run)``."""
    return RUN_NAMES.flatmap(lambda which: st.tuples(st.just(which), draw_for(which)))


@MODEL
@given(case=run_and(lambda which: st.one_of(well_formed_texts(which), well_formed_texts(which),
                                            st.lists(condition_texts, max_size=3))))
@example(case=("regression", ["regression=value:1e308"]))  # finite as typed, inf as float32
def test_condition_strings_parse_or_are_refused(runs, case):
    which, texts = case
    run = runs[which]
    ok, parsed = works_or_condgen_error(run.parse_conditions, texts)
    if not ok:
        return
    assert set(parsed) <= set(run.conditioners) and all(p.shape[0] >= 1 for p in parsed.values())
    ok, checked = works_or_condgen_error(run.check_conditions, parsed)
    # what parse_conditions accepts is a condition the run takes, in the same units (see condgen.plugin.conditioner)
    assert ok, f"{texts} parse, but check_conditions refuses the result: {checked}"
    assert all(torch.equal(checked[n].cpu(), parsed[n]) for n in parsed)  # the same conditions, the same units
    ok, rows = works_or_condgen_error(condgen.SampleRows.combining, run, parsed)
    assert ok, f"{texts} parse, but their rows cannot be made: {rows}"
    assert len(rows) == len(rows.labels) == math.prod(p.shape[0] for p in parsed.values())
    ok, samples = works_or_condgen_error(rows.sample, run, per_row=1, seed=0)
    if ok:
        assert samples.shape == (len(rows), *DATA_SHAPE)


# == 4. Python condition values, num and seed ==============================================================
TORCH_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
                torch.int32, torch.int64, torch.bool, torch.complex64, torch.uint16, torch.uint32, torch.uint64]
NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                np.uint32, np.uint64, np.bool_, np.complex64, object, "U3", "datetime64[s]"]
FILLS = [0, 1, -1, 2, 0.5, 255, 1e30, math.nan, math.inf, -math.inf]
shapes = st.lists(st.integers(0, 3), max_size=3)


@st.composite
def tensors(draw) -> torch.Tensor:
    shape, dtype = draw(shapes), draw(st.sampled_from(TORCH_DTYPES))
    if draw(st.booleans()):
        values = torch.full(shape, draw(st.sampled_from(FILLS)), dtype=torch.float64)
    else:
        values = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))) * 2
    return values.to(dtype)


@st.composite
def arrays(draw) -> np.ndarray:
    shape, dtype = draw(shapes), draw(st.sampled_from(NUMPY_DTYPES))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype == "datetime64[s]":
            return np.zeros(shape, dtype=dtype)
        return np.full(shape, draw(st.sampled_from(FILLS))).astype(dtype)


python_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(max_magnitude=10) | st.just(complex(math.nan, 1)),
    st.text(max_size=8),
    st.sampled_from(["all", "0,1", "1", "value:0.5", "value:0..1/3", "value:1,value:2"]),
    st.binary(max_size=4),
    st.integers(0, 1).map(np.int64),
    st.floats(-2, 2).map(np.float32),
)
python_values = st.one_of(
    st.recursive(
        python_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.sampled_from(["value", "label", "x"]) | names, inner, max_size=2),
        ),
        max_leaves=8,
    ),
    tensors(),
    arrays(),
)
conditions = st.one_of(
    st.fixed_dictionaries({"label": python_values}),
    st.fixed_dictionaries({"regression": python_values}),
    st.fixed_dictionaries({"label": python_values, "regression": python_values}),
    st.dictionaries(st.sampled_from(["label", "regression", "sign", ""]) | names, python_values, max_size=3),
    python_values,  # not a mapping
)


def half_and_half(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` or ``bad``, about equally often (a nested one_of would be flattened into equal branches)."""
    return st.booleans().flatmap(lambda is_good: good if is_good else bad)


#: A valid num is small (it is sampled); a huge one must be refused before anything is drawn.
nums = half_and_half(
    st.integers(1, 64),
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=10**12),
        st.sampled_from([10**12, 2**63, 10**30, 10**400]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.none(),
        st.booleans(),
        st.sampled_from([np.int64(3), torch.tensor(3), 3.0, "3", [3]]),
    ),
)
seeds = half_and_half(
    st.none() | st.integers(0, 2**64 - 1),
    st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=2**64),
        st.sampled_from([2**70, 2**64, -1, 1.5, 0.0, "0", True, np.int64(0), torch.tensor(0)]),
        st.floats(),
        st.text(max_size=3),
    ),
)


def is_whole(value: Any, low: int, high: float) -> bool:
    """An integer of any integer type (int, numpy.int64, an integer tensor of one element), not a bool."""
    if isinstance(value, bool):
        return False
    try:
        return low <= operator.index(value) <= high
    except TypeError:
        return False


def valid_conditions(which: str) -> st.SearchStrategy:
    """Conditions that run ``which`` takes: one label (which "both" may leave out) and one regression value."""
    label = st.sampled_from([0, 1, "1", " 0 ", 1.0, [1], torch.tensor(1), torch.tensor([0]), np.int64(0)])
    value = st.one_of(st.floats(-3, 3), st.floats(-3, 3).map(lambda v: {"value": v}), st.just("value:0.5"),
                      st.floats(-3, 3).map(lambda v: [v]), st.just(torch.tensor([[0.25]])))
    if which == "label":
        return st.fixed_dictionaries({"label": label})
    if which == "regression":
        return st.fixed_dictionaries({"regression": value})
    return st.fixed_dictionaries({"regression": value}, optional={"label": label})


def any_conditions(which: str) -> st.SearchStrategy:
    """Anything as conditions: often those run ``which`` takes with one value replaced by anything."""
    def replace_one(conds: dict) -> st.SearchStrategy:
        return st.builds(lambda name, value: {**conds, name: value}, st.sampled_from(sorted(conds)), python_values)

    valid = valid_conditions(which)
    return half_and_half(st.one_of(valid, valid.filter(bool).flatmap(replace_one)), conditions)


@MODEL
@given(case=run_and(any_conditions), num=st.integers(1, 8), seed=st.none() | st.integers(0, 2**64 - 1))
@example(case=("label", torch.tensor([])), num=1, seed=None)  # conditions that are not a mapping
@example(case=("label", np.array([0, 1])), num=1, seed=None)
@example(case=("regression", {"regression": 10**400}), num=1, seed=None)  # too large for a float
def test_sample_with_any_condition_values_returns_num_samples_or_refuses(runs, case, num, seed):
    which, conds = case
    run = runs[which]
    ok, out = works_or_condgen_error(run.sample, conds, num=num, seed=seed)
    if ok:
        assert isinstance(out, torch.Tensor) and out.shape == (num, *DATA_SHAPE)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@MODEL
@given(case=run_and(valid_conditions), num=nums, seed=seeds)
@example(case=("label", {"label": 0}), num=10**400, seed=None)  # its memory is beyond a float
def test_sample_takes_exactly_the_valid_num_and_seed(runs, case, num, seed):
    """With conditions the run takes, a whole num >= 1 and a seed in [0, 2**64 - 1] (or None) work; any
    other num or seed is refused (a huge num for lack of memory, before anything is drawn)."""
    which, conds = case
    run = runs[which]
    ok, out = works_or_condgen_error(run.sample, conds, num=num, seed=seed)
    valid = is_whole(num, 1, 64) and (seed is None or is_whole(seed, 0, 2**64 - 1))
    assert ok == valid, f"num={num!r}, seed={seed!r}: {'accepted' if ok else out}"
    if ok:
        assert out.shape == (num, *DATA_SHAPE)
        if seed is not None:
            assert torch.equal(out, run.sample(conds, num=num, seed=seed))  # a seed fixes the samples


@MODEL
@given(case=run_and(any_conditions), num=st.none() | st.integers(1, 8))
@example(case=("label", {"label": np.zeros(1, dtype=np.uint16)}), num=None)  # torch has no min() for it
@example(case=("label", {"label": torch.tensor([1], dtype=torch.uint64)}), num=None)
@example(case=("regression", {"regression": {"value": -(10**400)}}), num=None)
def test_check_conditions_gives_num_conditions_or_refuses(runs, case, num):
    which, conds = case
    run = runs[which]
    ok, checked = works_or_condgen_error(run.check_conditions, conds, num)
    if ok:
        assert set(checked) <= set(run.conditioners)
        for name, c in checked.items():
            expected = tuple(run.conditioners[name].condition_shape)
            assert isinstance(c, torch.Tensor) and tuple(c.shape[1:]) == expected
            assert num is None or c.shape[0] == num


# == 5. checkpoint metadata and tensors =====================================================================
@pytest.fixture(scope="module")
def checkpoints(runs) -> dict[str, tuple[dict[str, str], dict, dict[str, torch.Tensor]]]:
    """Each run's checkpoint as ``(header, meta, tensors)``."""
    out = Runs()
    for name, run in runs.items():
        with safe_open(str(run.directory / CHECKPOINT_NAME), "pt") as fh:
            header = dict(fh.metadata())
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        out[name] = (header, json.loads(header["meta"]), tensors)
    return out


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value: keys of dicts, indices of lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths_of(v, (*prefix, i))
    return found


def get_parent(meta: Any, path: tuple) -> Any:
    for part in path[:-1]:
        meta = meta[part]
    return meta


#: JSON values for a checkpoint's metadata: small numbers (a data_shape of them must not allocate much)
#: and huge ones (which must be refused up front), never mid-sized ones.
meta_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.sampled_from([10**15, 2**63, 2**64, 10**400, -2**63]),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
              st.sampled_from(["label", "regression", "inpaint", "value", "field", "attribute"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names | st.sampled_from(["name", "state"]), inner,
                                                                max_size=3),
    max_leaves=8,
)


class Variant:
    """A mutated checkpoint: its header and tensors, shown in reports by the changes made."""

    def __init__(self, which: str, changes: list[str], header: dict[str, str], tensors: dict[str, torch.Tensor]):
        self.which, self.changes, self.header, self.tensors = which, changes, header, tensors

    def __repr__(self) -> str:
        return f"<the {self.which!r} run's checkpoint with {'; '.join(self.changes) or 'no change'}>"


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


@st.composite
def mutated_checkpoints(draw, checkpoints: dict) -> Variant:
    which = draw(RUN_NAMES)
    header, meta, tensors = checkpoints[which]
    meta, tensors, changes = copy.deepcopy(meta), dict(tensors), []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["delete", "replace", "data_shape", "conditioners", "epoch", "config", "state"]))
        if op in ("delete", "replace"):
            paths = paths_of(meta)
            if not paths:
                continue
            path = draw(st.sampled_from(paths))
            parent = get_parent(meta, path)
            if op == "delete":
                del parent[path[-1]]
                changes.append(f"meta{list(path)} deleted")
            else:
                parent[path[-1]] = draw(meta_values)
                changes.append(f"meta{list(path)} = {shown(parent[path[-1]])}")
        elif op in ("data_shape", "conditioners", "epoch", "config"):
            meta[op] = draw({
                "data_shape": st.lists(st.integers(-1, 40) | st.sampled_from([10**15, 2**64]), max_size=9)
                | meta_values,
                "conditioners": st.lists(st.fixed_dictionaries(
                    {"name": st.sampled_from(["label", "regression", "inpaint", "nope"])},
                    optional={"state": meta_values, "plugin": meta_values, "version": meta_values}), max_size=3)
                | meta_values,
                "epoch": meta_values,
                "config": st.one_of(config_inputs, valid_configs(), meta_values),
            }[op])
            changes.append(f"meta[{op!r}] = {shown(meta[op])}")
        elif isinstance(meta.get("conditioners"), list):  # a regression conditioner's fitted state
            for entry in meta["conditioners"]:
                if isinstance(entry, dict) and entry.get("name") == "regression":
                    floats = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3)
                    entry["state"] = draw(st.fixed_dictionaries({
                        "sources": st.just({"value": "field"}) | meta_values,
                        "mean": floats | meta_values, "std": floats | meta_values}))
                    changes.append(f"regression state = {shown(entry['state'])}")
    model_keys = sorted(k for k in tensors if k.startswith("model."))
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["drop", "reshape", "dtype", "extra"]))
        key = draw(st.sampled_from(model_keys + sorted(set(tensors) - set(model_keys))))
        if op == "drop":
            tensors.pop(key, None)
            changes.append(f"tensor {key} dropped")
        elif op == "reshape":
            tensors[key] = torch.zeros(draw(st.lists(st.integers(0, 9), max_size=3)))
            changes.append(f"tensor {key} of shape {tuple(tensors[key].shape)}")
        elif op == "dtype" and key in tensors:
            dtype = draw(st.sampled_from([torch.float64, torch.float16, torch.int64, torch.bool, torch.bfloat16,
                                          torch.uint8]))
            tensors[key] = tensors[key].to(dtype)
            changes.append(f"tensor {key} as {dtype}")
        else:
            extra = draw(st.sampled_from(["model.extra", "model.decoder.9.weight", "other"]))
            tensors[extra] = torch.zeros(2)
            changes.append(f"extra tensor {extra}")
    header = {**header, "meta": json.dumps(meta)}  # NaN and Infinity too: Python's json reads them back
    garbage = draw(st.sampled_from(["none", "none", "none", "meta", "format", "missing meta", "extra"]))
    if garbage == "meta":
        header["meta"] = draw(st.text(max_size=20) | st.sampled_from(["", "null", "[]", "5", "{}", '"x"', "NaN"]))
    elif garbage == "format":
        header["format"] = draw(st.text(max_size=10) | st.just("condgen-checkpoint/2"))
    elif garbage == "missing meta":
        del header["meta"]
    elif garbage == "extra":
        header[draw(names)] = draw(st.text(max_size=8))
    if garbage != "none":
        shown_header = {k: v for k, v in header.items() if k != "meta" or garbage == "meta"}
        changes.append(f"header {garbage}: {shown(shown_header)}")
    return Variant(which, changes, header, tensors)


def conditions_for(run: condgen.Run) -> dict[str, Any]:
    return {n: {"label": 1, "regression": 0.5}.get(n, 0) for n in run.conditioners}


@COSTLY
@given(data=st.data())
def test_a_mutated_checkpoint_loads_or_is_refused(checkpoints, data):
    variant = data.draw(mutated_checkpoints(checkpoints), label="checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CHECKPOINT_NAME
        save_file(variant.tensors, str(path), metadata=variant.header)
        ok, run = works_or_condgen_error(condgen.load_run, path, device="cpu")
        if ok:
            assert isinstance(run, condgen.Run)
            ok, out = works_or_condgen_error(run.sample, conditions_for(run), num=2, seed=0)
            if ok:
                assert out.shape == (2, *run.model.data_shape)


@COSTLY
@given(which=RUN_NAMES, also=st.sets(st.sampled_from(["condgen_version", "epoch", "optimizer", "complete"])))
def test_a_checkpoint_without_conditioners_is_refused_naming_them(checkpoints, which, also):
    header, meta, tensors = checkpoints[which]
    meta = {k: v for k, v in meta.items() if k != "conditioners" and k not in also}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CHECKPOINT_NAME
        save_file(tensors, str(path), metadata={**header, "meta": json.dumps(meta)})
        with pytest.raises(CondgenError) as err:
            condgen.load_run(path, device="cpu")
    assert "conditioners" in str(err.value) and "missing" in str(err.value), str(err.value)


@COSTLY
@given(data=st.data())
def test_a_weight_of_the_wrong_shape_is_refused_naming_it(checkpoints, data):
    which = data.draw(RUN_NAMES)
    header, meta, tensors = checkpoints[which]
    key = data.draw(st.sampled_from(sorted(k for k in tensors if k.startswith("model."))))
    shape = data.draw(st.lists(st.integers(0, 9), max_size=3).filter(lambda s: tuple(s) != tuple(tensors[key].shape)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CHECKPOINT_NAME
        save_file({**tensors, key: torch.zeros(shape)}, str(path), metadata=header)
        with pytest.raises(CondgenError) as err:
            condgen.load_run(path, device="cpu")
    assert key in str(err.value) and str(tuple(shape)) in str(err.value), str(err.value)
