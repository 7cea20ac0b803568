"""What ``params.yaml`` may hold: every key, its type and its valid range, checked once on load.

Every ``al`` command validates the whole file before any work (a misspelled key or a zero that
would only fail after minutes of k-means fails at once, naming the key). Keys of a section that
no stage reads (``select.partitons``) are errors, not silently ignored settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from al_core.errors import InputError


@dataclass(frozen=True)
class Rule:
    kind: type | tuple[type, ...]
    valid: Callable[[Any], bool] = lambda value: True
    expected: str = ""


def positive(kind=int) -> Rule:
    return Rule(kind, lambda value: value > 0, "> 0")


def at_least(bound, kind=int) -> Rule:
    return Rule(kind, lambda value: value >= bound, f">= {bound}")


def one_of(*choices: str) -> Rule:
    return Rule(str, lambda value: value in choices, f"one of {', '.join(choices)}")


NUMBER = (int, float)
UNIT = Rule(NUMBER, lambda value: 0 <= value < 1, "in [0, 1)")
SCHEMA: dict[str, Rule | dict[str, Rule]] = {
    "seed": at_least(0),
    "sampler": Rule(str),
    "initial_size": positive(),
    "budget": positive(),
    "schedule": Rule(dict),
    "data": {
        "dataset": Rule(str), "root": Rule(str), "val_size": positive(), "split_seed": at_least(0),
        "classes": Rule(list), "test_fraction": Rule(NUMBER, lambda value: 0 < value < 1, "in (0, 1)"),
        "imbalance_ratio": at_least(1, NUMBER), "file_list": Rule(str),
    },
    "backbone": {
        "name": Rule(str), "checkpoint": Rule(str), "checkpoint_part": Rule(str), "image_size": at_least(8),
        "batch_size": positive(), "device": Rule(str), "shard_size": positive(), "processes": positive(),
    },
    "train": {
        "mode": one_of("linear", "finetune"), "lr": positive(NUMBER), "momentum": UNIT, "weight_decay": at_least(0, NUMBER),
        "batch_size": positive(), "max_epochs": positive(), "patience": positive(), "class_weighted": Rule(bool),
    },
    "full": {"max_epochs": at_least(0)},
    "finetune": {
        "lr": positive(NUMBER), "momentum": UNIT, "weight_decay": at_least(0, NUMBER), "batch_size": positive(),
        "epochs": positive(), "schedule": one_of("cosine", "step"), "step_epochs": positive(), "gamma": positive(NUMBER),
        "patience": positive(), "augment": Rule(bool),
    },
    "labels": {
        "source": one_of("oracle", "annotations"), "store": Rule(str), "conflicts": one_of("latest", "majority", "refuse"),
        "image_url": Rule(str),
    },
    "select": {
        "chunk_size": positive(), "base_order": one_of("round_robin", "sequential"), "partitions": positive(),
        "candidates_factor": positive(),
    },
    "vaal": {"steps": positive(), "batch_size": positive(), "latent_dim": positive(), "crop_size": at_least(8)},
    "cluster": {"clusters": positive(), "codebook_size": positive(), "iterations": positive()},
}


def _check(path: str, rule: Rule, value, source: str) -> None:
    kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join("number" if kind is float else kind.__name__ for kind in kinds if not (kind is int and float in kinds))
        raise InputError(f"{source}: {path} must be {names}, got {value!r}")
    if not rule.valid(value):
        raise InputError(f"{source}: {path} must be {rule.expected}, got {value!r}")


def validate_params(data: dict, source: str) -> None:
    """Raise InputError naming the first key of ``data`` that is unknown, ill-typed or out of range.
    Top-level keys outside the schema are the user's own and pass; keys inside a known section
    must be known. Missing keys are left to the stage that reads them."""
    for key, rule in SCHEMA.items():
        if key not in data:
            continue
        if isinstance(rule, Rule):
            _check(key, rule, data[key], source)
            continue
        section = data[key]
        if not isinstance(section, dict):
            raise InputError(f"{source}: {key} must be a mapping of settings, got {section!r}")
        unknown = sorted(set(section) - set(rule))
        if unknown:
            raise InputError(f"{source}: {key}.{unknown[0]} is not a setting of {key} (known: {', '.join(rule)}); "
                             "a misspelled key would change nothing")
        for name, value in section.items():
            _check(f"{key}.{name}", rule[name], value, source)
