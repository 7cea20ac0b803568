"""The calibrated stop rule on a pool whose curve flattens: 20 classes of embeddings, 15 rounds in simulation.

The rule (window, kappa) is the one ``python -m benchmarks.stopping --calibrate balanced`` chose on
the Fashion-MNIST stopping grid with the converged head (benchmarks/results/stopping_lbfgs.json);
this pool was not used to choose it. The pipeline's stages run in-process, as `dvc repro` would.
"""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.fakes import enter_workspace, invoke_al

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "benchmarks" / "results" / "stopping_lbfgs.json"
ROUNDS = 15


def twenty_class_embeddings(folder: Path, n_train=4000, n_val=400, n_test=2000, d=16, seed=0) -> None:
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    labels = rng.integers(0, 20, size=n)
    features = (rng.normal(scale=1.6, size=(20, d))[labels] + rng.normal(size=(n, d))).astype(np.float32)
    folder.mkdir(parents=True)
    np.save(folder / "features.npy", features)
    pl.DataFrame({"id": np.arange(n), "label": labels, "split": ["train"] * n_train + ["val"] * n_val + ["test"] * n_test}
                 ).write_csv(folder / "items.csv")


def test_the_calibrated_rule_stops_where_the_curve_has_flattened(tmp_path, monkeypatch):
    chosen = json.loads(CALIBRATION.read_text())["calibration"]["chosen"]
    twenty_class_embeddings(tmp_path / "embeddings")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    schedule = {f"r{k:02d}": ("init" if k == 0 else f"r{k - 1:02d}") for k in range(ROUNDS)}
    params.update(sampler="base", initial_size=60, budget=60, schedule=schedule)
    params["data"].update(dataset="features", root=str(tmp_path / "embeddings"))
    params["train"]["solver"] = "lbfgs"
    params["stop"].update(set_size=1000, kappa=chosen["threshold"], window=chosen["window"])
    enter_workspace(tmp_path, params, monkeypatch)
    for stage in (("prepare",), ("embed",), ("init",), ("labels", "init"), ("full",)):
        invoke_al(*stage)
    for name, previous in schedule.items():
        invoke_al("train", name, previous)
        invoke_al("evaluate", name)
        invoke_al("select", name)
        invoke_al("labels", name)
    invoke_al("report", "--scope", "run")
    rounds = pl.read_csv("reports/rounds.csv")
    top1 = rounds["top1"].to_list()
    last_line = Path("reports/table.md").read_text().strip().splitlines()[-1]
    assert f"stop (mean kappa of the last {chosen['window']} round pairs >= {chosen['threshold']}): at r" in last_line, last_line
    stop_round = last_line.split(": at ")[1].split(" ")[0]
    at = rounds["round"].to_list().index(stop_round)
    assert top1[at] >= max(top1) - 0.01, (stop_round, top1)
    assert at < ROUNDS - 1  # it fires before the run ends: labels saved
    assert max(top1[-5:]) - min(top1[-5:]) < 0.01  # the curve has flattened here (the premise of this test)


@pytest.fixture(autouse=True)
def _needs_the_calibration():
    if not CALIBRATION.is_file():
        pytest.fail(f"{CALIBRATION} is missing: run python -m benchmarks.stopping --calibrate balanced")


def test_the_when_to_stop_page_shows_the_calibration_file():
    from benchmarks.stopping import table_rows

    result = json.loads(CALIBRATION.read_text())
    page = (ROOT / "docs" / "how-to" / "when-to-stop.md").read_text()
    rows = table_rows(result)
    assert len(rows) == 2 + len(result["cells"]) == 12
    missing = [row for row in rows if row not in page]
    assert not missing, f"docs/how-to/when-to-stop.md disagrees with {CALIBRATION.name}: {missing[:2]}"
    chosen = result["calibration"]["chosen"]
    assert f"window {chosen['window']}, kappa >= {chosen['threshold']}" in page
