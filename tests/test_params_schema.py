"""params.yaml and its schema agree: every key documented, every default the file's value."""

from pathlib import Path

import pytest
import yaml

from al_core.schema import Setting
from pipeline.params import SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def flat_schema() -> dict[str, Setting]:
    flat = {}
    for key, rule in SCHEMA.items():
        if isinstance(rule, Setting):
            flat[key] = rule
        else:
            flat.update({f"{key}.{name}": setting for name, setting in rule.items()})
    return flat


def test_every_key_has_help_and_params_yaml_holds_the_defaults():
    schema = flat_schema()
    assert all(setting.help for setting in schema.values()), [k for k, s in schema.items() if not s.help]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in params.items():
        if isinstance(value, dict) and key != "schedule":
            for name, inner in value.items():
                if key == "select" and isinstance(inner, dict):
                    continue  # select.<sampler>: the sampler registry's options
                assert schema[f"{key}.{name}"].default == inner, f"params.yaml {key}.{name} is {inner!r}, the schema says {schema[f'{key}.{name}'].default!r}"
        elif key != "schedule":
            assert schema[key].default == value, f"params.yaml {key} is {value!r}, the schema says {schema[key].default!r}"
    missing = sorted(key for key in schema if key not in {"schedule", "select.processes"}
                     and (key.split(".")[0] not in params or ("." in key and key.split(".")[1] not in params[key.split(".")[0]])))
    assert not missing, f"params.yaml lacks {missing}"


def test_the_dataset_choices_are_the_readers():
    from al_core.data import DATASETS

    assert SCHEMA["data"]["dataset"].valid("features") and all(SCHEMA["data"]["dataset"].valid(name) for name in DATASETS)
    assert SCHEMA["data"]["dataset"].expected == f"one of {', '.join(['fashion_mnist', 'cifar10', 'imagefolder', 'manifest', 'features'])}"
    assert sorted(DATASETS) == sorted(["fashion_mnist", "cifar10", "imagefolder", "manifest", "features"])


def test_the_settings_object_is_typed_frozen_and_has_every_default(tmp_path):
    import dataclasses

    from pipeline.params import Params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"budget": 7, "data": {"imbalance_ratio": 10}, "train": {"lr": 1}}))
    settings = Params(tmp_path / "params.yaml").settings
    assert settings.budget == 7 and settings.data.imbalance_ratio == 10.0 and isinstance(settings.data.imbalance_ratio, float)
    assert settings.train.lr == 1.0 and isinstance(settings.train.lr, float)
    assert settings.train.solver == SCHEMA["train"]["solver"].default and settings.select.chunk_size == 8192  # defaults filled in
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.train.lr = 2.0
    for section, rules in SCHEMA.items():
        if isinstance(rules, dict):
            assert {field.name for field in dataclasses.fields(getattr(settings, section))} == set(rules)
