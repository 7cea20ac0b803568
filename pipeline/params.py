"""``params.yaml``: typed access (`Params`) and what it may hold: every key, its type and its valid range, checked once on load.

Every ``al`` command validates the whole file before any work (a misspelled key or a zero that
would only fail after minutes of k-means fails at once, naming the key). Keys of a section that
no stage reads (``select.chunk_sise``) are errors, not silently ignored settings. Sampler options
live in ``select.<sampler>`` mappings and are checked against the sampler registry, which holds
each option's type, range and default (``al samplers`` lists them).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import yaml

from al_core.errors import InputError
from al_core.schema import NUMBER, Setting, at_least, one_of, positive
from pipeline.artifacts import INIT_ROUND

def unit(default: float, help: str) -> Setting:
    return Setting(NUMBER, default, valid=lambda value: 0 <= value < 1, expected="in [0, 1)", help=help)


def fraction(default: float, help: str, closed: bool = False) -> Setting:
    if closed:
        return Setting(NUMBER, default, valid=lambda value: 0 < value <= 1, expected="in (0, 1]", help=help)
    return Setting(NUMBER, default, valid=lambda value: 0 < value < 1, expected="in (0, 1)", help=help)


PRECISIONS = ("float32", "bfloat16", "auto")
SAMPLER_SECTIONS = "select"  # select.<sampler>: that sampler's options, checked by the stages that read them
# Every key of params.yaml: type, range, default (params.yaml holds these defaults) and help. The
# parameter reference of the documentation is generated from this table.
SCHEMA: dict[str, Setting | dict[str, Setting]] = {
    "seed": at_least(0, default=0, help="seeds s0, every sampler's random choices and head training"),
    "sampler": Setting(str, "base", help="the sampler of every round (al samplers lists them)"),
    "initial_size": positive(default=100, help="size of the seeded random initial labeled set s0"),
    "budget": positive(default=100, help="items queried per round"),
    "schedule": Setting(dict, help="round -> previous round (the first maps to init); written by al schedule N"),
    "data": {
        "dataset": one_of("fashion_mnist", "cifar10", "imagefolder", "manifest", "features", default="fashion_mnist",
                          help="the dataset reader: fashion_mnist, cifar10, imagefolder, manifest or features (your embeddings)"),
        "root": Setting(str, "/usr/share/datasets/fashion-mnist",
                        help="the dataset's folder, or the manifest file (default: the Debian package dataset-fashion-mnist)"),
        "val_size": positive(default=5000, help="training items held out for early stopping, never queried (labeled datasets)"),
        "split_seed": at_least(0, default=0, help="seeds the validation hold-out, the manifest's test split and the stop set"),
        "classes": Setting(list, [], help="class names in order; [] = from the data (folders, manifest labels)"),
        "test_fraction": fraction(0.1, "manifest without a split column: the seeded fraction used as the test set"),
        "imbalance_ratio": at_least(1, NUMBER, default=1, help=">1: long-tailed training set, class c keeps n_max * ratio^(-c/(C-1))"),
        "file_list": Setting(str, "", help="optional text file of the training items to keep (ImageNet-LT style: path [label])"),
    },
    "backbone": {
        "name": Setting(str, "efficientnet_lite0", help="any timm model name"),
        "checkpoint": Setting(str, "packaged:efficientnet_lite0",
                              help="packaged:NAME or a local .pth/.pt/.safetensors file (MoCo, SimCLR, DINO, torchvision, timm layouts)"),
        "checkpoint_part": Setting(str, "auto", help="entry of a training checkpoint: auto, teacher, student, state_dict..."),
        "image_size": at_least(8, default=96, help="input size in pixels; the model's own size for photos (the default's 96 suits 28 px images)"),
        "batch_size": positive(default=256, help="images per forward pass of the extraction"),
        "device": Setting(str, "auto", valid=lambda value: re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", value) is not None,
                          expected="auto, cpu, cuda or cuda:N", help="where extraction, the head's training and selection's fast product run: auto (cuda when present, else cpu), cpu, cuda or cuda:N"),
        "shard_size": positive(default=8192, help="images per resumable shard (a killed embed restarts from the last one)"),
        "processes": positive(default=1, help=">1: embed under torchrun with this many local processes (one per GPU; gloo on CPU)"),
        "mean": Setting(list, [], help="per-channel normalisation; [] = the checkpoint's own, else timm's pretrained config"),
        "std": Setting(list, [], help="per-channel standard deviation, as mean"),
        "interpolation": one_of("auto", "bilinear", "bicubic", "nearest", default="auto", help="resizing to image_size"),
        "precision": one_of(*PRECISIONS, default="float32",
                            help="float32 (byte-identical reruns across hosts), bfloat16, or auto (bf16 on GPUs and AMX/AVX512-BF16 CPUs)"),
    },
    "train": {
        "mode": one_of("linear", "finetune", default="linear",
                       help="linear: a head on frozen features; finetune: the whole network from the checkpoint, each round"),
        "solver": one_of("sgd", "lbfgs", default="sgd",
                         help="sgd: the paper's head (SGD, early stopping on val top-1; the lr ... patience keys); lbfgs: softmax "
                              "regression fitted to convergence, its L2 penalty chosen on val (same labels, same head)"),
        "max_iter": positive(default=300, help="lbfgs: L-BFGS iterations at most per penalty tried"),
        "lr": positive(NUMBER, default=0.05, help="sgd: learning rate of the head (SGD with momentum, cosine schedule)"),
        "momentum": unit(0.9, "SGD momentum"),
        "weight_decay": at_least(0, NUMBER, default=0.0005, help="L2 weight decay"),
        "batch_size": positive(default=256, help="minibatch size, capped so every epoch has at least 4 steps"),
        "max_epochs": positive(default=50, help="epochs at most"),
        "patience": positive(default=10, help="epochs without a better validation top-1 before stopping"),
        "class_weighted": Setting(bool, False, help="weight the loss by the inverse class frequency of the labeled set"),
    },
    "full": {"max_epochs": at_least(0, default=0, help="epochs of the full-data probe; 0 = train.max_epochs (cap it at scale)")},
    "finetune": {
        "lr": positive(NUMBER, default=0.001, help="learning rate (the paper's code: SGD lr 0.001, momentum 0.9, batch 128)"),
        "momentum": unit(0.9, "SGD momentum"),
        "weight_decay": at_least(0, NUMBER, default=0.0005, help="L2 weight decay"),
        "batch_size": positive(default=128, help="minibatch size"),
        "epochs": positive(default=20, help="epochs at most"),
        "schedule": one_of("cosine", "step", default="cosine", help="cosine, or step (lr x gamma every step_epochs)"),
        "step_epochs": positive(default=10, help="epochs between steps of the step schedule"),
        "gamma": positive(NUMBER, default=0.1, help="factor of each step of the step schedule"),
        "patience": positive(default=5, help="epochs without a better validation top-1 before stopping"),
        "augment": Setting(bool, True, help="random resized crop and horizontal flip"),
    },
    "labels": {
        "source": one_of("oracle", "annotations", default="oracle",
                         help="oracle: the dataset's labels (a simulation); annotations: the annotation store (al import)"),
        "store": Setting(str, "data/annotations", help="folder of the annotation store (labels.parquet); keep it in git or dvc"),
        "conflicts": one_of("latest", "majority", "refuse", default="latest",
                            help="several annotations of one item: latest (by time, then import), majority, or refuse"),
        "image_url": Setting(str, "", help="al export: URL prefix for images (empty: Label Studio serves the image files)"),
        "awaiting": one_of("wait", "return", "set_aside", default="wait",
                           help="queries still without a label at the next round: wait (stop and say so), return (to the pool), set_aside"),
    },
    "stop": {
        "set_size": positive(default=2000, help="pool items every round's head predicts (the same items each round)"),
        "kappa": fraction(0.99, "stop once the mean Cohen's kappa of consecutive rounds' predictions reaches this...", closed=True),
        "window": positive(default=3, help="...over the last this many round pairs (Bloodgood and Vijay-Shanker 2009)"),
    },
    "select": {
        "chunk_size": positive(default=8192, help="pool rows per streamed block; the streaming samplers' picks do not depend on it"),
        "processes": positive(default=1, help=">1: select under torchrun with this many processes (same picks)"),
        "precision": one_of(*PRECISIONS, default="auto",
                            help="fast product scoring features before the exact refinement (the picks are the same): auto is "
                                 "bfloat16 on CPUs with AMX or AVX512-BF16 for pools of 1e10 multiply-adds and more, float32 elsewhere"),
    },
}


def validate_params(data: dict, source: str) -> None:
    """Raise InputError naming the first key of ``data`` that is unknown, ill-typed or out of range
    (at the top level too: ``sampeler: random`` beside ``sampler: base`` would change nothing).
    Missing keys are left to the stage that reads them."""
    unknown_top = sorted(set(data) - set(SCHEMA), key=str)
    if unknown_top:
        raise InputError(f"{source}: {unknown_top[0]} is not a setting (known: {', '.join(SCHEMA)}); "
                         "a misspelled key would change nothing")
    for key, rule in SCHEMA.items():
        if key not in data:
            continue
        if isinstance(rule, Setting):
            rule.check(key, data[key], source)
            continue
        section = data[key]
        if not isinstance(section, dict):
            raise InputError(f"{source}: {key} must be a mapping of settings, got {section!r}")
        if key == SAMPLER_SECTIONS:
            section = _check_sampler_sections(section, source)
        unknown = sorted(set(section) - set(rule))
        if unknown:
            hint = "; a sampler's options go in select.<sampler>.<option> (`al samplers`)" if key == SAMPLER_SECTIONS else ""
            raise InputError(f"{source}: {key}.{unknown[0]} is not a setting of {key} (known: {', '.join(rule)}); "
                             f"a misspelled key would change nothing{hint}")
        for name, value in section.items():
            rule[name].check(f"{key}.{name}", value, source)


def _check_sampler_sections(section: dict, source: str) -> dict:
    """``select`` without its ``select.<sampler>`` mappings, after checking that each is a mapping.
    Their keys and values are checked against the sampler registry by the stages that read them
    (``select``, ``cluster``: see ``pipeline/sampler_options.py``), so that stages which never
    select do not depend on the samplers' code."""
    return {name: value for name, value in section.items() if not isinstance(value, dict)}


def check_schedule(schedule: dict, source: str) -> dict[str, str]:
    """``schedule`` if each round maps to the one before it (the first to ``init``), else an InputError."""
    rounds = list(schedule)
    for index, (current, previous) in enumerate(schedule.items()):
        expected = INIT_ROUND if index == 0 else rounds[index - 1]
        if previous != expected:
            raise InputError(f"{source}: schedule.{current} is {previous!r}, expected {expected!r} "
                             "(each round maps to the one before it; the first to 'init')")
    return schedule


PARAMS_FILE = Path("params.yaml")


def _typed(setting: Setting, value):
    """A checked value as its setting's type: a NUMBER setting is always a float (``1`` -> ``1.0``)."""
    if setting.kind == NUMBER and not isinstance(value, bool):
        return float(value)
    return copy.deepcopy(value)


def _section_type(name: str, rules: dict[str, Setting]) -> type:
    """A frozen dataclass with one typed field per setting of the section."""
    fields = []
    for key, rule in rules.items():
        kind = float if rule.kind == NUMBER else (rule.kind[0] if isinstance(rule.kind, tuple) else rule.kind)
        fields.append((key, kind))
    return dataclasses.make_dataclass(f"{name.title()}Settings", fields, frozen=True)


SECTION_TYPES = {name: _section_type(name, rules) for name, rules in SCHEMA.items() if isinstance(rules, dict)}
# Each section's type, for the functions below a stage's door that take one section.
DataSettings, BackboneSettings, TrainSettings, FinetuneSettings, LabelsSettings = (
    SECTION_TYPES[name] for name in ("data", "backbone", "train", "finetune", "labels"))
Settings = dataclasses.make_dataclass(
    "Settings", [(name, SECTION_TYPES[name] if name in SECTION_TYPES else object) for name in SCHEMA], frozen=True)
Settings.__doc__ = ("Every setting of params.yaml, typed and with the schema's defaults filled in: ``settings.train.lr``, "
                    "``settings.budget``. Built once when the file is read (`Params.settings`).")


def build_settings(data: dict) -> Settings:
    """The typed settings of a validated ``params.yaml`` mapping (missing keys: the schema's defaults;
    a sampler's own ``select.<sampler>`` options are read by ``pipeline/sampler_options.py``)."""
    values = {}
    for name, rule in SCHEMA.items():
        given = data.get(name)
        if isinstance(rule, Setting):
            values[name] = _typed(rule, given) if name in data else copy.deepcopy(rule.default)
            continue
        section = given if isinstance(given, dict) else {}
        values[name] = SECTION_TYPES[name](**{key: _typed(setting, section[key]) if key in section else copy.deepcopy(setting.default)
                                              for key, setting in rule.items()})
    return Settings(**values)


class Params:
    """``params.yaml``, checked against the schema, and its typed ``settings``."""

    def __init__(self, path: Path = PARAMS_FILE):
        if not path.exists():
            raise InputError(f"{path} not found; run from the project root (where dvc.yaml is)")
        self.path = path
        try:
            self.data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise InputError(f"{path} is not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
        if not isinstance(self.data, dict):
            raise InputError(f"{path} must be a mapping of settings (key: value), got {type(self.data).__name__}")
        validate_params(self.data, str(path))
        self.settings = build_settings(self.data)  # what the stages read: typed, once
        if self.settings.schedule is not None:
            self.schedule()

    def schedule(self) -> dict[str, str]:
        """``schedule`` (round -> the round before it), checked; an error when the file has none."""
        if self.settings.schedule is None:
            raise InputError(f"{self.path} has no key 'schedule'; write it with al schedule N")
        return check_schedule(self.settings.schedule, str(self.path))

    def rounds(self) -> list[str]:
        """``init`` and the scheduled rounds, in order."""
        return [INIT_ROUND, *self.schedule()]


def preprocessing_overrides(backbone: BackboneSettings) -> dict:
    """``backbone.mean`` / ``.std`` / ``.interpolation`` where set (``[]`` and ``auto``: the
    checkpoint's own preprocessing, else timm's pretrained config of ``backbone.name``);
    ``backbone``: the section of `Settings`."""
    overrides = {}
    for key in ("mean", "std"):
        value = getattr(backbone, key)
        if value:
            overrides[key] = value
    interpolation = backbone.interpolation
    if interpolation != "auto":
        overrides["interpolation"] = interpolation
    return overrides
