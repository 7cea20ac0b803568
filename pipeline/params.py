"""``params.yaml``: typed access (:class:`Params`) and what it may hold: every key, its type and its valid range, checked once on load.

Every ``al`` command validates the whole file before any work (a misspelled key or a zero that
would only fail after minutes of k-means fails at once, naming the key). Keys of a section that
no stage reads (``select.chunk_sise``) are errors, not silently ignored settings. Sampler options
live in ``select.<sampler>`` mappings and are checked against the sampler registry, which holds
each option's type, range and default (``al samplers`` lists them).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from al_core.errors import InputError
from al_core.schema import NUMBER, Setting, at_least, one_of, positive
from pipeline.artifacts import INIT_ROUND

UNIT = Setting(NUMBER, valid=lambda value: 0 <= value < 1, expected="in [0, 1)")
SAMPLER_SECTIONS = "select"  # select.<sampler>: that sampler's options, checked by the stages that read them
SCHEMA: dict[str, Setting | dict[str, Setting]] = {
    "seed": at_least(0),
    "sampler": Setting(str),
    "initial_size": positive(),
    "budget": positive(),
    "schedule": Setting(dict),
    "data": {
        "dataset": Setting(str), "root": Setting(str), "val_size": positive(), "split_seed": at_least(0),
        "classes": Setting(list), "test_fraction": Setting(NUMBER, valid=lambda value: 0 < value < 1, expected="in (0, 1)"),
        "imbalance_ratio": at_least(1, NUMBER), "file_list": Setting(str),
    },
    "backbone": {
        "name": Setting(str), "checkpoint": Setting(str), "checkpoint_part": Setting(str), "image_size": at_least(8),
        "batch_size": positive(), "device": Setting(str), "shard_size": positive(), "processes": positive(),
        "mean": Setting(list), "std": Setting(list), "interpolation": one_of("auto", "bilinear", "bicubic", "nearest"),
        "precision": one_of("auto", "float32", "bfloat16"),
    },
    "train": {
        "mode": one_of("linear", "finetune"), "lr": positive(NUMBER), "momentum": UNIT, "weight_decay": at_least(0, NUMBER),
        "batch_size": positive(), "max_epochs": positive(), "patience": positive(), "class_weighted": Setting(bool),
    },
    "full": {"max_epochs": at_least(0)},
    "finetune": {
        "lr": positive(NUMBER), "momentum": UNIT, "weight_decay": at_least(0, NUMBER), "batch_size": positive(),
        "epochs": positive(), "schedule": one_of("cosine", "step"), "step_epochs": positive(), "gamma": positive(NUMBER),
        "patience": positive(), "augment": Setting(bool),
    },
    "labels": {
        "source": one_of("oracle", "annotations"), "store": Setting(str), "conflicts": one_of("latest", "majority", "refuse"),
        "image_url": Setting(str), "awaiting": one_of("wait", "return", "set_aside"),
    },
    "stop": {"set_size": positive(), "kappa": Setting(NUMBER, valid=lambda value: 0 < value <= 1, expected="in (0, 1]"),
             "window": positive()},
    "select": {"chunk_size": positive(), "processes": positive(), "precision": one_of("auto", "float32", "bfloat16")},
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
    (``select``, ``cluster``: see ``stages/sampler_options.py``), so that stages which never
    select do not depend on the samplers' code."""
    return {name: value for name, value in section.items() if not isinstance(value, dict)}


PARAMS_FILE = Path("params.yaml")


class Params:
    """``params.yaml`` with lookups that name the missing or ill-typed key."""

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
        if "schedule" in self.data:
            self.schedule()

    def get(self, dotted: str, kind: type, default=None):
        node = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not None:
                    return default
                raise InputError(f"{self.path} has no key {dotted!r}")
            node = node[part]
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise InputError(f"{self.path}: {dotted} must be {kind.__name__}, got {node!r}")
        return node

    def schedule(self) -> dict[str, str]:
        schedule = self.get("schedule", dict)
        rounds = list(schedule)
        for index, (current, previous) in enumerate(schedule.items()):
            expected = INIT_ROUND if index == 0 else rounds[index - 1]
            if previous != expected:
                raise InputError(
                    f"{self.path}: schedule.{current} is {previous!r}, expected {expected!r} "
                    "(each round maps to the one before it; the first to 'init')"
                )
        return schedule


def preprocessing_overrides(params: Params) -> dict:
    """``backbone.mean`` / ``.std`` / ``.interpolation`` where set (``[]`` and ``auto``: the
    checkpoint's own preprocessing, else timm's pretrained config of ``backbone.name``)."""
    overrides = {}
    for key in ("mean", "std"):
        value = params.get(f"backbone.{key}", list, [])
        if value:
            overrides[key] = value
    interpolation = params.get("backbone.interpolation", str, "auto")
    if interpolation != "auto":
        overrides["interpolation"] = interpolation
    return overrides
