"""The registry holds each sampler's options as a schema; validation and defaults are generic."""

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from al_core.errors import InputError
from al_core.samplers import SAMPLERS, select, select_with_scores
from al_core.samplers.pool import Pool
from al_core.samplers.registry import Selection, register_sampler
from al_core.schema import positive
from stages.cli import app


def test_every_option_has_a_type_help_and_a_default_where_settable():
    for name, spec in SAMPLERS.items():
        for option, setting in spec.options.items():
            assert setting.help, f"{name}.{option} has no help"
            if setting.settable:
                assert setting.default is not None, f"{name}.{option} has no default"
                setting.check(f"{name}.{option}", setting.default)  # the default passes its own schema


@pytest.mark.parametrize("name, options, expected", [
    ("partitioned_coreset", {"partitions": 0}, r"option 'partitions' of sampler 'partitioned_coreset' must be > 0, got 0"),
    ("partitioned_badge", {"partitions": "3"}, r"option 'partitions' of sampler 'partitioned_badge' must be int, got '3'"),
    ("partitioned_badge", {"partitions": True}, r"must be int, got True"),
    ("base", {"order": "zigzag"}, r"option 'order' of sampler 'base' must be one of round_robin, sequential"),
    ("margin", {"order": "sequential"}, r"sampler 'margin' takes no option\(s\) \['order'\]; it takes none"),
    ("margin_clustering", {"candidates_factor": 2.5}, r"candidates_factor' of sampler 'margin_clustering' must be int"),
])
def test_options_are_checked_against_the_schema(problem, name, options, expected):
    features, weight, bias, mask, _ = problem
    with pytest.raises(InputError, match=expected):
        select(name, 5, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0, options=options)


def test_a_new_sampler_gets_validated_defaulted_options(problem, monkeypatch):
    """What a sampler author writes: one decorated function; select checks and defaults its option."""
    seen = {}

    @register_sampler("every_kth", summary="test: every k-th unlabeled item",
                      options={"k": positive(default=3, help="stride")})
    def every_kth(pool: Pool, budget: int, seed: int) -> Selection:
        seen["k"] = pool.option("k")
        picked = pool.unlabeled_indices[::pool.option("k")][:budget]
        return Selection(indices=picked, scores=np.full(budget, np.nan))

    try:
        features, weight, bias, mask, _ = problem
        unlabeled = np.flatnonzero(~mask)
        assert select("every_kth", 4, labeled_mask=mask, seed=0).tolist() == unlabeled[::3][:4].tolist()
        assert seen["k"] == 3
        assert select("every_kth", 4, labeled_mask=mask, seed=0, options={"k": 2}).tolist() == unlabeled[::2][:4].tolist()
        with pytest.raises(InputError, match="option 'k' of sampler 'every_kth' must be > 0"):
            select("every_kth", 4, labeled_mask=mask, seed=0, options={"k": 0})
    finally:
        SAMPLERS.pop("every_kth")


def test_selection_from_defaults_equals_explicit_defaults(problem):
    features, weight, bias, mask, _ = problem
    inputs = dict(features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    for name in ("base", "partitioned_coreset"):
        defaults = {option: setting.default for option, setting in SAMPLERS[name].options.items() if setting.settable}
        assert np.array_equal(select(name, 9, **inputs), select(name, 9, options=defaults, **inputs))


def test_importing_the_samplers_does_not_import_torch():
    code = "import sys, al_core.samplers; print(len(al_core.samplers.SAMPLERS), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= 14 and out[1] == "False"


def test_al_samplers_lists_every_option_with_its_default():
    output = CliRunner().invoke(app, ["samplers"]).output
    for name, spec in SAMPLERS.items():
        assert name in output
        for option, setting in spec.options.items():
            if setting.settable:
                assert f"select.{name}.{option}: {setting.describe()}" in output


def test_vaal_options_are_checked_before_torch_loads():
    """vaal's options reach the torch code through the same schema (crop_size checked there)."""
    with pytest.raises(InputError, match="crop_size' of sampler 'vaal' must be a multiple of 16"):
        select_with_scores("vaal", 3, images=np.zeros((10, 16, 16), np.uint8), labeled_mask=np.arange(10) < 3, seed=0,
                           options={"crop_size": 24})
