"""Filter and refine: selections from features equal those from the exact logits, whatever the
fast product (float32 BLAS or bfloat16), the chunking or the labeled rows, on pools built with
near-ties (duplicated rows, rows one ulp apart)."""

import numpy as np
import pytest

from al_core.linear import reference_logits
from al_core.samplers import select_with_scores

@pytest.fixture(autouse=True)
def bfloat16_streams_at_any_budget(monkeypatch):
    """These pools are small and their budgets a large share of them, where the samplers would
    stream float32 instead (``Pool.stream_keeping``): lift that share so the bfloat16 stream is tested."""
    from al_core.samplers import boundary, pool

    monkeypatch.setattr(pool, "COARSE_MAX_SHARE", 1.0)
    monkeypatch.setattr(boundary, "BASE_COARSE_MAX_SHARE", 1.0)


SAMPLERS = [
    ("base", {"order": "round_robin"}), ("base", {"order": "sequential"}), ("mase", {}), ("margin", {}),
    ("confidence", {}), ("entropy", {}), ("margin_clustering", {"candidates_factor": 3}),
]


def near_tie_pool(seed: int, n: int = 1500, d: int = 80, c: int = 12, twins: bool = True):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(c, d))
    labels = rng.integers(0, c, size=n)
    features = (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)
    # Between two class centres: small margins, where the picks are decided.
    mix = rng.uniform(0.3, 0.7, size=(n // 3, 1))
    features[: n // 3] = (mix * centers[labels[: n // 3]] + (1 - mix) * centers[(labels[: n // 3] + 1) % c]).astype(np.float32)
    features[400:420] = features[10]  # exact ties: broken by pool index
    ulp = features[30:60].copy()
    ulp[:, 0] = np.nextafter(ulp[:, 0], np.float32(np.inf))
    features[600:630] = ulp  # one ulp from rows 30..59: logits tied to within the float32 product's error
    weight = (rng.normal(size=(c, d)) / np.sqrt(d)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=c).astype(np.float32)
    if twins:  # two classes with one weight row: no boundary between them, margins of exactly 0
        weight[5], bias[5] = weight[4], bias[4]
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=100, replace=False)] = True
    return features, weight, bias, mask, np.bincount(labels[mask], minlength=c), (labels * 7 + 3) % 17


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, options", SAMPLERS, ids=[f"{n}-{o.get('order', '')}" for n, o in SAMPLERS])
def test_picks_equal_the_exact_logits_for_every_product_and_chunking(name, options, seed):
    features, weight, bias, mask, counts, clusters = near_tie_pool(seed)
    if name == "margin_clustering":
        options = dict(options, cluster_ids=clusters)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=seed, options=options, labeled_class_counts=counts)
    exact = select_with_scores(name, 60, logits=reference_logits(features, weight, bias), **common)
    # numpy's BLAS, torch's bfloat16, and torch's float32 on the CPU (the code path a GPU takes)
    for precision, device in (("float32", None), ("bfloat16", None), ("float32", "cpu")):
        for chunk_size in (8192, 97):
            got = select_with_scores(name, 60, features=features, precision=precision, chunk_size=chunk_size, device=device, **common)
            assert got.indices.tolist() == exact.indices.tolist(), (precision, device, chunk_size)
            assert got.scores.tobytes() == exact.scores.tobytes(), (precision, device, chunk_size)
            # Entropy streams float32 whatever the precision (its intervals from bfloat16 rule out almost nothing).
            assert got.notes["filter"] == ("float32" if name == "entropy" else precision)
            assert got.notes["streamed_rows"] == int((~mask).sum())


def test_the_float32_filter_refines_few_rows():
    features, weight, bias, mask, _, _ = near_tie_pool(3, n=6000, twins=False)
    selection = select_with_scores("margin", 50, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0)
    assert selection.notes["filter"] == "float32"
    assert 50 <= selection.notes["refined_rows"] < 0.1 * selection.notes["streamed_rows"]


def test_given_logits_are_used_as_they_are():
    features, weight, bias, mask, _, _ = near_tie_pool(4)
    selection = select_with_scores("entropy", 30, logits=features @ weight.T + bias, labeled_mask=mask, seed=0)
    assert selection.notes == {}  # no fast product, nothing refined


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
def test_base_walks_the_exact_lists_when_they_run_out(order, monkeypatch):
    """Lists of keep[c] = 1 run out at once: BASE streams again, refining lazily each time."""
    from al_core.samplers import boundary

    monkeypatch.setattr(boundary, "BASE_SLACK_FACTOR", 0)
    monkeypatch.setattr(boundary, "BASE_SLACK_EXTRA", 1)
    passes = []
    original = boundary._boundary_candidates
    monkeypatch.setattr(boundary, "_boundary_candidates", lambda *args: passes.append(1) or original(*args))
    features, weight, bias, mask, counts, _ = near_tie_pool(5, n=900)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=1, options={"order": order}, labeled_class_counts=counts)
    exact = select_with_scores("base", 70, logits=reference_logits(features, weight, bias), **common)
    exact_passes = len(passes)
    for precision in ("float32", "bfloat16"):
        got = select_with_scores("base", 70, features=features, precision=precision, chunk_size=128, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes(), precision
        assert got.classes.tolist() == exact.classes.tolist()
        # Rows are counted once however many passes stream or refine them: never "more of fewer".
        assert got.notes["streamed_rows"] == int((~mask).sum()) and got.notes["refined_rows"] <= got.notes["streamed_rows"]
    assert exact_passes > 1 and len(passes) == 3 * exact_passes  # the same re-streams, on each path


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
@pytest.mark.parametrize("twins", [True, False])
def test_base_passes_for_a_few_classes_multiply_only_their_columns(order, twins, monkeypatch):
    """When a few lists run out, the next pass takes the first pass's predicted class, largest logit
    and bound of each row and multiplies the rows by those classes' weights only
    (_few_class_candidates): picks, order, classes and scores still equal the exact logits'."""
    from al_core.samplers import boundary

    monkeypatch.setattr(boundary, "BASE_SLACK_FACTOR", 0)
    monkeypatch.setattr(boundary, "BASE_SLACK_EXTRA", 1)
    monkeypatch.setattr(boundary, "NARROW_PASS_MAX_CLASSES", 1.0)
    narrow, full = [], []
    few, every = boundary._few_class_candidates, boundary._boundary_candidates
    monkeypatch.setattr(boundary, "_few_class_candidates", lambda *args: narrow.append(int((args[2] > 0).sum())) or few(*args))
    monkeypatch.setattr(boundary, "_boundary_candidates", lambda *args: full.append(1) or every(*args))
    features, weight, bias, mask, counts, _ = near_tie_pool(5, n=900, twins=twins)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=1, options={"order": order}, labeled_class_counts=counts)
    exact = select_with_scores("base", 70, logits=reference_logits(features, weight, bias), **common)
    subsets = []
    for precision in ("float32", "bfloat16"):
        narrow.clear(), full.clear()
        got = select_with_scores("base", 70, features=features, precision=precision, chunk_size=128, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes(), precision
        assert got.classes.tolist() == exact.classes.tolist()
        assert full == [1] and narrow, (precision, narrow)  # the case under test happened
        assert (got.notes["passes"], got.notes["few_class_passes"]) == (1, len(narrow))  # what the select stage reports
        subsets.extend(narrow)
    if order == "sequential":  # later passes for some of the classes only
        assert min(subsets) < weight.shape[0], subsets


@pytest.mark.parametrize("buffer", [1 << 21, 50])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("twins", [True, False])
def test_a_few_class_pass_keeps_every_entry_that_can_be_among_the_nearest(precision, twins, buffer, monkeypatch):
    """_few_class_candidates: every candidate's lower end is at most its exact distance, and each
    class's keep[c] nearest untaken items (exact distances, ties by index) are all candidates,
    also when it drops entries as it goes (a small buffer)."""
    from al_core.samplers import boundary

    monkeypatch.setattr(boundary, "FEW_CLASS_BUFFER", buffer)
    from al_core.samplers.pool import make_pool
    from al_core.samplers.scores import boundary_distances, inverse_weight_distances

    features, weight, bias, mask, _, _ = near_tie_pool(7, n=1500, twins=twins)
    pool = make_pool(labeled_mask=mask, features=features, head_weight=weight, head_bias=bias, precision=precision, chunk_size=128)
    geometry = inverse_weight_distances(weight)
    classes_count = weight.shape[0]
    summary = boundary._RowSummary(pool.size)
    boundary._boundary_candidates(pool, geometry, np.full(classes_count, 5), None, summary)
    exact = boundary_distances(reference_logits(features, weight, bias), geometry)[0]
    excluded = np.zeros(pool.size, dtype=bool)
    excluded[np.random.default_rng(0).choice(pool.size, 300, replace=False)] = True
    keep = np.zeros(classes_count, dtype=np.int64)
    keep[[1, 6, 7]] = 40  # 6 and 7 are twins in the twin pool
    lists = boundary._few_class_candidates(pool, geometry, keep, excluded, summary)
    classes = np.repeat(np.arange(classes_count), np.diff(lists.starts))
    assert (lists.lower <= exact[lists.rows, classes]).all()
    eligible = np.flatnonzero(~mask & ~excluded)
    for cls in (1, 6, 7):
        nearest = eligible[np.lexsort((eligible, exact[eligible, cls]))[:40]]
        assert set(nearest.tolist()) <= set(lists.rows[classes == cls].tolist()), cls
    assert set(classes.tolist()) == {1, 6, 7} and len(lists.rows) < 0.5 * 3 * eligible.shape[0]


def test_base_refines_about_the_budget_not_its_whole_candidate_lists():
    features, weight, bias, mask, counts, _ = near_tie_pool(6, n=6000, twins=False)
    selection = select_with_scores("base", 40, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask,
                                   seed=0, labeled_class_counts=counts)
    # The lists hold up to (1 + 32) * quota + 64 candidates per class; the turns walk about the quota.
    assert selection.notes["refined_rows"] < 0.1 * selection.notes["streamed_rows"]


def saturated_pool(seed: int = 8, n: int = 3000, d: int = 64, c: int = 30):
    """A head that saturates the softmax (top-two gaps of 28-66, median 47): most margins and confidences are
    exactly 1.0 in float64."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = rng.integers(0, c, size=n)
    features = (centers[labels] * rng.uniform(0.6, 1.2, size=(n, 1)) + rng.normal(scale=0.05, size=(n, d))).astype(np.float32)
    weight = (centers * 100).astype(np.float32)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=100, replace=False)] = True
    return features, weight, np.zeros(c, dtype=np.float32), mask


@pytest.mark.parametrize("name", ["margin", "confidence"])
@pytest.mark.parametrize("budget", [30, 1500])
def test_a_saturated_head_is_settled_without_refining_every_row(name, budget):
    from al_core.samplers.scores import confidence_score, margin_score

    score_of = {"margin": margin_score, "confidence": confidence_score}
    """Tied scores of 1.0: the filter proves them (denominator exactly 1) and margin takes the
    exact logits of two classes, not C, for such rows; picks, order and scores equal the exact ones."""
    features, weight, bias, mask = saturated_pool()
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=0)
    reference = reference_logits(features, weight, bias)
    exact = select_with_scores(name, budget, logits=reference, **common)
    assert (score_of[name](reference[~mask]) == 1.0).mean() > 0.9  # the ties are there to be settled
    for chunk_size in (8192, 97):
        got = select_with_scores(name, budget, features=features, chunk_size=chunk_size, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes(), chunk_size
        assert got.notes["refined_rows"] <= min(2 * budget, got.notes["streamed_rows"] // 4), got.notes
        if name == "margin":  # z_2 - z_1 far below -38: the margin is 1 / (1 + R) whatever the exact logits
            assert got.notes["refined_rows"] + got.notes["partial_rows"] < 0.05 * got.notes["streamed_rows"], got.notes


def test_margins_at_the_edge_of_saturation_take_two_exact_logits():
    """z_2 - z_1 between -38.6 and -37.2: 1 + R is known (exactly 1.0) but -expm1(z_2 - z_1) is 1.0
    or the float64 below it depending on the exact logits, so margin takes the exact logits of the
    top two classes (``partial_rows``), not all C; picks, order and scores equal the exact ones."""
    rng = np.random.default_rng(16)
    gaps = rng.uniform(37.2, 38.6, size=400)
    # The last column, which no class weighs, widens the product's bound to a few hundredths (||x|| ~ 1e5).
    features = np.stack([np.full(400, 50.0), 50.0 - gaps, 40.0 - gaps, rng.uniform(0.5, 1.0, 400) * 1e5], axis=1).astype(np.float32)
    weight = np.eye(4, dtype=np.float32)[:3]
    mask = np.zeros(400, dtype=bool)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=np.zeros(3, dtype=np.float32), seed=0)
    from al_core.samplers.scores import margin_score

    reference = reference_logits(features, weight, common["head_bias"])
    assert len(set(margin_score(reference).tolist())) == 2  # 1.0 and the float64 below it: the edge is in the pool
    exact = select_with_scores("margin", 30, logits=reference, **common)
    for chunk_size in (8192, 37):
        got = select_with_scores("margin", 30, features=features, chunk_size=chunk_size, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes()
        assert got.notes["partial_rows"] > 0 and got.notes["refined_rows"] == 0, got.notes


@pytest.mark.parametrize("budget, factor", [(40, 10), (300, 10), (60, 2)])
def test_margin_clustering_scores_about_the_budget_not_its_candidates(budget, factor):
    """Cluster-Margin from features scores exactly what decides its picks (membership among the
    factor x budget candidates, then each cluster's first k_g): picks, order and scores equal
    ranking every candidate on the exact logits, also when the candidates are the whole pool."""
    features, weight, bias, mask, counts, clusters = near_tie_pool(9, n=3000)
    options = {"candidates_factor": factor, "cluster_ids": clusters}
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=0, options=options)
    exact = select_with_scores("margin_clustering", budget, logits=reference_logits(features, weight, bias), **common)
    for chunk_size in (8192, 211):
        got = select_with_scores("margin_clustering", budget, features=features, chunk_size=chunk_size, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes(), chunk_size
        if factor * budget >= got.notes["streamed_rows"]:  # every row a candidate: about the budget is scored
            assert got.notes["refined_rows"] < 0.5 * got.notes["streamed_rows"], got.notes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_margin_clustering_membership_scores_the_rows_straddling_the_cut(seed, monkeypatch):
    """Cluster-Margin's membership (the count smallest by (score, row)) from intervals: the members
    equal a full sort of the true scores (ties included), and only about the rows whose interval
    holds the count-th score are scored, not every row between the count-th lower and upper ends."""
    from al_core.samplers import cluster_margin
    from al_core.samplers.ranking import Intervals

    rng = np.random.default_rng(seed)
    n, count = 4000, 1000
    truth = np.round(rng.uniform(0.0, 1.0, n), 3)  # ties on purpose
    width = rng.uniform(0.0, 0.02, n)
    lower, upper = truth - width * rng.uniform(0, 1, n), truth + width * rng.uniform(0, 1, n)
    exact_at_start = rng.random(n) < 0.05  # rows the stream already scored: points
    lower[exact_at_start] = upper[exact_at_start] = truth[exact_at_start]
    rows = rng.permutation(10 * n)[:n]
    found = Intervals(rows, lower.copy(), upper.copy(), np.full((n, 2), -1), np.full(n, np.nan))
    scored = []
    score_of = dict(zip(rows.tolist(), truth.tolist()))

    def exact_scores(pool, score, part):
        scored.append(part.rows)
        return np.array([score_of[row] for row in part.rows.tolist()])

    monkeypatch.setattr(cluster_margin, "exact_scores", exact_scores)
    exact = np.full(n, np.nan)
    lower_now, upper_now = lower.copy(), upper.copy()
    members = cluster_margin._members(None, found, count, exact, lower_now, upper_now)
    expected = sorted(zip(truth.tolist(), rows.tolist()))[:count]
    assert sorted(rows[members].tolist()) == sorted(row for _, row in expected)
    done = np.concatenate(scored)
    assert np.array_equal(exact[np.isin(rows, done)], truth[np.isin(rows, done)])
    cut, top = np.partition(lower, count - 1)[count - 1], np.partition(upper, count - 1)[count - 1]
    band = int(((upper >= cut) & (lower <= top)).sum())  # what scoring every open row takes
    assert 0 < done.shape[0] < 0.8 * band, (done.shape[0], band)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("twins", [True, False])
def test_mase_margins_from_a_few_exact_logits_equal_those_of_all(precision, twins):
    """MASE refines a row from the exact logits of the classes that decide its margin: every row's
    margin equals the exact logits' bit for bit, also for rows whose predicted class the fast
    product cannot settle (twins, ties, one ulp), and for rows asked for more than once."""
    from al_core.samplers.boundary import exact_margins
    from al_core.samplers.pool import make_pool
    from al_core.samplers.scores import boundary_distances, inverse_weight_distances

    features, weight, bias, mask, _, _ = near_tie_pool(11, n=900, twins=twins)
    geometry = inverse_weight_distances(weight)
    expected, predicted = boundary_distances(reference_logits(features, weight, bias), geometry)
    pool = make_pool(labeled_mask=mask, features=features, head_weight=weight, head_bias=bias, precision=precision)
    rows = np.random.default_rng(0).permutation(np.repeat(np.arange(900), 3))
    margins = exact_margins(pool, geometry, rows)
    assert margins.tobytes() == expected[rows, predicted[rows]].tobytes()
    # Only rows the product cannot settle take all C exact logits (with twins: those predicted as either twin).
    assert pool.stats["partial_rows"] > 0.6 * 900 and pool.stats.get("refined_rows", 0) < 0.25 * 900, pool.stats


def test_a_device_the_product_cannot_run_on_is_refused_by_name():
    from al_core.errors import InputError
    from al_core.samplers.pool import make_pool

    features, weight, bias, mask, _, _ = near_tie_pool(12, n=900)
    common = dict(labeled_mask=mask, features=features, head_weight=weight, head_bias=bias)
    with pytest.raises(InputError, match="not a torch device name"):
        make_pool(device="gpu0", **common)
    if not __import__("torch").cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            make_pool(device="cuda", **common)
    assert make_pool(device="cpu", **common).device == "cpu"


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
@pytest.mark.parametrize("budget", [24, 60])
def test_base_from_sparse_intervals_once_every_class_has_a_threshold(order, budget, monkeypatch):
    """Once every class has a running threshold, BASE's blocks keep only the entries whose lower end
    passes (boundary_entry_bounds): picks, order and scores still equal the exact logits'."""
    from al_core.samplers import boundary

    sparse = []
    original = boundary.boundary_entry_bounds
    monkeypatch.setattr(boundary, "boundary_entry_bounds", lambda *args: sparse.append(1) or original(*args))
    features, weight, bias, mask, counts, _ = near_tie_pool(13, n=3000)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=2, options={"order": order}, labeled_class_counts=counts)
    exact = select_with_scores("base", budget, logits=reference_logits(features, weight, bias), **common)
    for precision in ("float32", "bfloat16"):
        got = select_with_scores("base", budget, features=features, precision=precision, chunk_size=256, **common)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes(), precision
    assert len(sparse) > 10  # the sparse path ran, for most blocks


@pytest.mark.parametrize("name", ["margin", "confidence", "mase", "margin_clustering"])
def test_a_bfloat16_stream_narrows_its_open_rows_in_float32_before_any_exact_logits(name, monkeypatch):
    """The bfloat16 stream's bounds are about 35 times float32's: the rows they leave open get a
    float32 product first (``narrowed_rows``), so no more rows take exact logits than after a
    float32 stream (without the narrowing, margin, confidence and margin_clustering take them for
    over ten times as many rows here)."""
    features, weight, bias, mask, _, clusters = near_tie_pool(3, n=6000, twins=False)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=0,
                  options={"cluster_ids": clusters} if name == "margin_clustering" else {})
    exact = select_with_scores(name, 60, logits=reference_logits(features, weight, bias), **common)
    single = select_with_scores(name, 60, features=features, precision="float32", **common)
    double = select_with_scores(name, 60, features=features, precision="bfloat16", **common)
    assert double.indices.tolist() == exact.indices.tolist() and double.scores.tobytes() == exact.scores.tobytes()
    assert double.notes["filter"] == "bfloat16" and 0 < double.notes["narrowed_rows"] < double.notes["streamed_rows"]
    exact_work = lambda notes: notes["refined_rows"] + notes.get("partial_rows", 0)  # noqa: E731
    assert exact_work(double.notes) <= exact_work(single.notes) + 5, (single.notes, double.notes)
    if name != "mase":  # what the narrowing spares (MASE narrows its candidates in its own refinement too)
        from al_core.samplers import ranking

        monkeypatch.setattr(ranking, "_narrowed", lambda pool, found, count, score: found)
        unnarrowed = select_with_scores(name, 60, features=features, precision="bfloat16", **common)
        assert unnarrowed.indices.tolist() == exact.indices.tolist()
        assert exact_work(unnarrowed.notes) > 10 * exact_work(double.notes), unnarrowed.notes


def test_auto_precision_streams_bfloat16_only_for_large_pools_on_cpus_that_have_it(monkeypatch):
    from al_core.samplers import pool as pool_module

    features, weight, bias, mask, _, _ = near_tie_pool(14, n=900)
    common = dict(labeled_mask=mask, features=features, head_weight=weight, head_bias=bias, precision="auto")
    work = 900 * features.shape[1] * weight.shape[0]
    for flag, threshold, expected in (("amx_bf16", work, "bfloat16"), ("amx_bf16", work + 1, "float32"),
                                      ("avx512_bf16", 1, "bfloat16"), (None, 1, "float32")):
        monkeypatch.setattr(pool_module, "machine", lambda flag=flag: {"bf16": flag})
        monkeypatch.setattr(pool_module, "AUTO_BFLOAT16_WORK", threshold)
        assert pool_module.make_pool(**common).precision == expected, (flag, threshold)
    # Given logits: nothing to multiply, so float32 (and no torch) whatever the CPU.
    monkeypatch.setattr(pool_module, "AUTO_BFLOAT16_WORK", 1)
    monkeypatch.setattr(pool_module, "machine", lambda: {"bf16": "amx_bf16"})
    assert pool_module.make_pool(labeled_mask=mask, logits=features @ weight.T, precision="auto").precision == "float32"


@pytest.mark.parametrize("name", ["margin", "mase", "base", "margin_clustering"])
def test_a_bfloat16_stream_is_kept_for_small_budgets_only(name, monkeypatch):
    """Above a share of the pool kept (``COARSE_MAX_SHARE``; BASE's own, smaller; margin_clustering
    keeps its factor x budget candidates), the samplers stream float32: the bfloat16 stream's open
    rows would cost more than it saves. Same picks either way."""
    from al_core.samplers import boundary, pool

    monkeypatch.undo()  # the shares as the code has them
    features, weight, bias, mask, counts, clusters = near_tie_pool(15, n=6000, twins=False)
    share = boundary.BASE_COARSE_MAX_SHARE if name == "base" else pool.COARSE_MAX_SHARE
    factor = 2 if name == "margin_clustering" else 1
    largest = int(share * 6000) // factor  # the largest budget that keeps the bfloat16 stream
    options = {"cluster_ids": clusters, "candidates_factor": factor} if name == "margin_clustering" else {}
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=0, options=options, labeled_class_counts=counts)
    reference = reference_logits(features, weight, bias)
    for budget, filter_used in ((largest, "bfloat16"), (largest + 1, "float32")):
        got = select_with_scores(name, budget, features=features, precision="bfloat16", **common)
        exact = select_with_scores(name, budget, logits=reference, **common)
        assert got.notes["filter"] == filter_used, (budget, got.notes)
        assert got.indices.tolist() == exact.indices.tolist() and got.scores.tobytes() == exact.scores.tobytes()
        if filter_used == "float32":  # MASE's few-class refinement multiplies in float32 too, but narrows nothing
            assert got.notes.get("narrowed_rows", 0) == 0, got.notes


def test_the_select_stage_line_says_which_product_streamed_and_what_it_narrowed():
    from stages.select import scoring_note

    features, weight, bias, mask, _, _ = near_tie_pool(3, n=6000, twins=False)
    notes = select_with_scores("margin", 60, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0,
                               precision="bfloat16").notes
    assert scoring_note(notes) == (f" (bfloat16 product, {notes['refined_rows']:,} of 5,900 rows scored exactly, "
                                   f"{notes['narrowed_rows']:,} narrowed by a float32 product first)")
    single = select_with_scores("margin", 60, features=features, head_weight=weight, head_bias=bias, labeled_mask=mask, seed=0).notes
    assert scoring_note(single) == f" (float32 product, {single['refined_rows']:,} of 5,900 rows scored exactly)"
    assert single["passes"] == 1
    assert scoring_note({}) == ""
    several = {"filter": "float32", "passes": 3, "few_class_passes": 1, "refined_rows": 812, "streamed_rows": 59000}
    assert scoring_note(several) == " (float32 product, the pool streamed 3 times, 1 more pass for a few classes, 812 of 59,000 rows scored exactly)"


@pytest.mark.parametrize("order", ["round_robin", "sequential"])
def test_base_narrows_a_bfloat16_streams_rows_in_float32_as_far_as_its_turns_walk(order, monkeypatch):
    """After a bfloat16 stream BASE's candidate lists hold entries with wide intervals; the rows its
    turns reach get a float32 product first (``narrowed_rows``), and only those whose narrowed
    intervals still reach the walk take exact logits: about as many as after a float32 stream, and
    fewer than when they are refined straight from the stream's intervals (here 102 against 168)."""
    from al_core.samplers import boundary

    features, weight, bias, mask, counts, _ = near_tie_pool(3, n=6000, twins=False)
    common = dict(labeled_mask=mask, head_weight=weight, head_bias=bias, seed=0, labeled_class_counts=counts,
                  options={"order": order})
    exact = select_with_scores("base", 60, logits=reference_logits(features, weight, bias), **common)
    single = select_with_scores("base", 60, features=features, precision="float32", **common)
    double = select_with_scores("base", 60, features=features, precision="bfloat16", **common)
    assert double.indices.tolist() == exact.indices.tolist() and double.scores.tobytes() == exact.scores.tobytes()
    assert double.notes["filter"] == "bfloat16" and 0 < double.notes["narrowed_rows"] < double.notes["streamed_rows"] // 2
    assert double.notes["refined_rows"] <= 1.2 * single.notes["refined_rows"], (single.notes, double.notes)
    lists = boundary._refining_lists
    monkeypatch.setattr(boundary, "_refining_lists", lambda *args, narrow=False: lists(*args))
    unnarrowed = select_with_scores("base", 60, features=features, precision="bfloat16", **common)
    assert unnarrowed.indices.tolist() == exact.indices.tolist()
    assert unnarrowed.notes["refined_rows"] > 1.4 * double.notes["refined_rows"], (unnarrowed.notes, double.notes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refining_lists_with_a_narrowing_tier_walk_as_the_exact_lists(seed, monkeypatch):
    """`RefiningLists` with ``narrow``, on made-up distances with ties: coarse lower ends up to 1
    below the exact distance, narrowed ones up to 0.05 below (some rows narrowed straight to their
    exact distances), tiny batches so every path runs; each turn takes what `ExactLists` gives."""
    from al_core.samplers import boundary_lists
    from al_core.samplers.boundary_lists import ExactLists, RefiningLists

    monkeypatch.setattr(boundary_lists, "FIRST_BATCH", 1)
    monkeypatch.setattr(boundary_lists, "FIRST_NARROW_BATCH", 1)
    monkeypatch.setattr(boundary_lists, "PREFETCH_NARROW", 0)
    rng = np.random.default_rng(seed)
    n, c = 300, 7
    distances = np.round(rng.uniform(0, 4, size=(n, c)), 1).astype(np.float32)  # rounded: many ties
    keep = rng.integers(20, 60, size=c)
    member = rng.uniform(size=(n, c)) < 0.6  # each class's candidates: a random subset of the rows
    member[:, 0] = True
    rows, classes = np.nonzero(member)
    coarse = np.maximum(distances[rows, classes] - rng.uniform(0, 1, size=rows.shape[0]), 0).astype(np.float32)
    straight = rng.uniform(size=n) < 0.2  # rows the float32 product leaves unsettled: exact distances
    slack = np.where(straight[:, None], 0, rng.uniform(0, 0.05, size=(n, c))).astype(np.float32)
    narrowed_calls, exact_calls = [], []

    def narrow(batch):
        narrowed_calls.append(batch.copy())
        return np.maximum(distances[batch] - slack[batch], 0), straight[batch]

    def exact(batch):
        exact_calls.append(batch.copy())
        return distances[batch]

    lists = [(np.flatnonzero(member[:, k]), distances[member[:, k], k].astype(np.float64)) for k in range(c)]
    lists = [(index[np.lexsort((index, value))][: keep[k]], np.sort(value)[: keep[k]]) for k, (index, value) in enumerate(lists)]
    reference = ExactLists(lists, keep)
    refining = RefiningLists(classes, rows, coarse, keep, exact, narrow)
    turns = rng.integers(0, c, size=150)
    refining.prefetch(np.bincount(turns, minlength=c))
    taken_a, taken_b = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for turn in turns.tolist():
        want, got = reference.next_untaken(turn, taken_a), refining.next_untaken(turn, taken_b)
        assert got == want, (turn, got, want)
        if want is None:
            break
        taken_a[want[0]] = taken_b[want[0]] = True
    assert narrowed_calls and exact_calls  # both tiers ran
    refined = np.concatenate(exact_calls)
    assert np.unique(refined).shape[0] == refined.shape[0]  # no row refined twice
    assert not np.isin(refined, np.flatnonzero(straight)).any()  # rows narrowed to exact distances are not refined again
