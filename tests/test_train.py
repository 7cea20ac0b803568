import numpy as np
import pytest

from al_core.errors import InputError
from al_core.train import HeadConfig, feature_statistics, train_linear_head


def blobs(seed, n, d=16, c=4, offset=5.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * 3
    y = rng.integers(0, c, size=n)
    # A large common offset and scale: the head must fold its standardisation back correctly.
    x = (centers[y] + rng.normal(size=(n, d))) * 7 + offset
    return x.astype(np.float32), y


def test_head_learns_separable_classes_and_acts_on_raw_features():
    x, y = blobs(0, 400)
    xv, yv = blobs(0, 200)
    mean, std = feature_statistics(np.concatenate([x, xv]), chunk_size=37)
    head = train_linear_head(x, y, xv, yv, num_classes=4, config=HeadConfig(max_epochs=30), seed=0, mean=mean, std=std)
    assert head.weight.shape == (4, 16) and head.weight.dtype == np.float32
    accuracy = (head.logits(xv).argmax(axis=1) == yv).mean()
    assert accuracy > 0.95
    assert head.history["val_top1"] == pytest.approx(accuracy, abs=0.01)


def test_training_is_deterministic_for_a_seed():
    x, y = blobs(1, 100)
    xv, yv = blobs(1, 50)
    config = HeadConfig(max_epochs=10)
    a = train_linear_head(x, y, xv, yv, num_classes=4, config=config, seed=3)
    b = train_linear_head(x, y, xv, yv, num_classes=4, config=config, seed=3)
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


def test_feature_statistics_match_numpy():
    x, _ = blobs(2, 333)
    mean, std = feature_statistics(x, chunk_size=50)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=0), rtol=1e-8)


def test_bad_config_and_inputs():
    with pytest.raises(InputError, match="train.lr must be positive"):
        HeadConfig(lr=0)
    x, y = blobs(0, 10)
    with pytest.raises(InputError, match="empty labeled set"):
        train_linear_head(x[:0], y[:0], x, y, num_classes=4, config=HeadConfig(), seed=0)
    with pytest.raises(InputError, match="diverged"):
        train_linear_head(x * 1e30, y, x, y, num_classes=4, config=HeadConfig(lr=1e30), seed=0)


def test_class_weighted_loss_favours_the_rare_class():
    rng = np.random.default_rng(0)
    # Two overlapping classes, 9:1 in training: the plain loss leans to the majority.
    x = np.concatenate([rng.normal(0.0, 1.0, size=(450, 2)), rng.normal(1.0, 1.0, size=(50, 2))]).astype(np.float32)
    y = np.repeat([0, 1], [450, 50])
    xv = np.concatenate([rng.normal(0.0, 1.0, size=(200, 2)), rng.normal(1.0, 1.0, size=(200, 2))]).astype(np.float32)
    yv = np.repeat([0, 1], 200)
    plain = train_linear_head(x, y, xv, yv, num_classes=2, config=HeadConfig(max_epochs=20, patience=20), seed=0)
    weighted = train_linear_head(x, y, xv, yv, num_classes=2, config=HeadConfig(max_epochs=20, patience=20, class_weighted=True), seed=0)
    predicted_rare = [(head.logits(xv).argmax(axis=1) == 1).mean() for head in (plain, weighted)]
    assert predicted_rare[1] > predicted_rare[0] + 0.2


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_streaming_from_a_memory_map_gives_the_same_head_as_in_memory(tmp_path, solver):
    # The full-data probe at scale reads each minibatch from the memory-mapped table; it must
    # train exactly the head the in-memory path trains on the same rows.
    x, y = blobs(4, 300)
    xv, yv = blobs(5, 80)
    table = np.concatenate([blobs(6, 50)[0], x]).astype(np.float16)
    np.save(tmp_path / "features.npy", table)
    mapped = np.load(tmp_path / "features.npy", mmap_mode="r")
    rows = np.arange(50, 350)
    mean, std = feature_statistics(mapped[rows])
    config = HeadConfig(solver=solver, max_epochs=6, batch_size=32)
    common = dict(num_classes=4, config=config, seed=7, mean=mean, std=std, train_rows=rows)
    in_memory = train_linear_head(mapped, y, xv, yv, **common)
    streamed = train_linear_head(mapped, y, xv, yv, memory_limit_bytes=0, **common)
    assert in_memory.history["in_memory"] and not streamed.history["in_memory"]
    assert np.array_equal(in_memory.weight, streamed.weight) and np.array_equal(in_memory.bias, streamed.bias)


def test_a_nan_in_the_training_set_names_the_row():
    x, y = blobs(8, 60)
    xv, yv = blobs(9, 20)
    x[17, 3] = np.nan
    with pytest.raises(InputError, match="features row 17 of the training set holds NaN"):
        train_linear_head(x, y, xv, yv, num_classes=4, config=HeadConfig(max_epochs=2), seed=0)
