"""VAAL on tiny images: the sampler contract, determinism, and that it learns labeled vs unlabeled."""

from contextlib import nullcontext

import numpy as np
import pytest

from al_core.errors import InputError
from al_core.samplers import BudgetWarning, select, select_with_scores

SMALL = {"steps": 3, "batch_size": 4, "latent_dim": 4, "crop_size": 16}


def tiny_pool(n=40, labeled=10, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(n, 12, 12)).astype(np.uint8)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=labeled, replace=False)] = True
    return images, mask


@pytest.mark.parametrize("budget", [0, 1, 7, 30, 45])
def test_vaal_keeps_the_sampler_contract(budget):
    images, mask = tiny_pool()
    with pytest.warns(BudgetWarning) if budget > 30 else nullcontext():
        first = select("vaal", budget, images=images, labeled_mask=mask, seed=3, options=SMALL)
    again = select("vaal", budget, images=images, labeled_mask=mask, seed=3, options=SMALL, chunk_size=3)
    assert len(first) == min(budget, 30) and len(set(first.tolist())) == len(first)
    assert not mask[first].any() and first.tolist() == again.tolist()


def test_vaal_scores_are_sorted_probabilities():
    images, mask = tiny_pool()
    selection = select_with_scores("vaal", 10, images=images, labeled_mask=mask, seed=0, options=SMALL)
    assert np.all(np.diff(selection.scores) >= 0) and ((selection.scores >= 0) & (selection.scores <= 1)).all()


def test_vaal_learns_what_labeled_images_look_like():
    # Labeled images are dark, a third of the unlabeled ones too; the rest are bright and so the
    # most confidently "unlabeled": they must come first.
    rng = np.random.default_rng(0)
    dark = (20 + rng.integers(0, 6, size=(40, 12, 12, 3))).astype(np.uint8)  # near-constant: nothing to memorise
    bright = (220 + rng.integers(0, 6, size=(20, 12, 12, 3))).astype(np.uint8)
    images = np.concatenate([dark, bright])
    mask = np.zeros(60, dtype=bool)
    mask[:30] = True
    picked = select("vaal", 20, images=images, labeled_mask=mask, seed=0,
                    options={"steps": 200, "batch_size": 8, "latent_dim": 8, "crop_size": 16})
    assert (picked >= 40).mean() >= 0.8


def test_vaal_needs_images_and_a_labeled_item():
    images, mask = tiny_pool()
    with pytest.raises(InputError, match="needs images"):
        select("vaal", 3, labeled_mask=mask, seed=0)
    with pytest.raises(InputError, match="at least one labeled item"):
        select("vaal", 3, images=images, labeled_mask=np.zeros(40, dtype=bool), seed=0, options=SMALL)
    with pytest.raises(InputError, match="multiple of 16"):
        select("vaal", 3, images=images, labeled_mask=mask, seed=0, options={**SMALL, "crop_size": 20})

