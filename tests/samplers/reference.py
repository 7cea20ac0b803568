"""Slow, obviously-correct implementations of the samplers, one item at a time.

Written straight from the paper's definitions with explicit loops and norms, sharing no code
with al_core, to check the fast chunked implementations against.
"""

import math

import numpy as np


def logits_of(features, weight, bias):
    return [[float(np.dot(np.asarray(row, np.float64), w) + b) for w, b in zip(weight, bias)] for row in features]


def softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    s = sum(e)
    return [v / s for v in e]


def rank(scores: dict, budget: int) -> list:
    """Smallest scores first, ties by pool index."""
    return [index for index, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))][:budget]


def uncertainty(name, logits, labeled_mask, budget):
    scores = {}
    for i, z in enumerate(logits):
        if labeled_mask[i]:
            continue
        p = sorted(softmax(z), reverse=True)
        if name == "confidence":
            scores[i] = p[0]
        elif name == "margin":
            scores[i] = p[0] - p[1]
        else:
            scores[i] = sum(q * math.log(q) for q in p if q > 0)
    return rank(scores, budget)


def boundary_distance(z, weight, p, c):
    norm = math.sqrt(sum((a - b) ** 2 for a, b in zip(weight[p], weight[c])))
    return abs(z[p] - z[c]) / norm if norm > 0 else math.inf


def margin_distance(z, weight):
    p = max(range(len(z)), key=lambda c: (z[c], -c))
    return min(boundary_distance(z, weight, p, c) for c in range(len(z)) if c != p), p


def mase(logits, weight, labeled_mask, budget):
    scores = {i: margin_distance(z, weight)[0] for i, z in enumerate(logits) if not labeled_mask[i]}
    return rank(scores, budget)


def base(logits, weight, labeled_mask, budget, order="round_robin", labeled_counts=None, seed=0):
    """BASE from the paper's Alg. 2: while fewer than b items are chosen, each class in turn adds
    the unlabeled item, not chosen yet, nearest its boundary (DCSDB). ``order="sequential"`` is
    the authors' released code instead: class 0 fills its whole quota, then class 1, ...

    When C does not divide b, the last, partial pass goes to the classes with the fewest labels
    (``labeled_counts``, none given: all equal), ties in the order of numpy's seeded permutation
    ``default_rng(seed).permutation(C)`` (our documented rule), in class order.
    """
    num_classes = len(weight)
    counts = [0] * num_classes if labeled_counts is None else list(labeled_counts)
    tie_break = np.random.default_rng(seed).permutation(num_classes).tolist()
    extra = set(sorted(range(num_classes), key=lambda c: (counts[c], tie_break[c]))[: budget % num_classes])
    quota = [budget // num_classes + (1 if c in extra else 0) for c in range(num_classes)]
    margins = [margin_distance(z, weight) for z in logits]
    chosen = []

    def take_nearest(c):
        best = None
        for i, z in enumerate(logits):
            if labeled_mask[i] or i in chosen:
                continue
            own, p = margins[i]
            distance = own if p == c else boundary_distance(z, weight, p, c)
            if best is None or (distance, i) < best:
                best = (distance, i)
        chosen.append(best[1])

    if order == "sequential":
        for c in range(num_classes):
            for _ in range(quota[c]):
                take_nearest(c)
        return chosen
    taken_by = [0] * num_classes
    while len(chosen) < budget:
        for c in range(num_classes):
            if taken_by[c] < quota[c]:
                take_nearest(c)
                taken_by[c] += 1
    return chosen


def base_algorithm2(logits, weight, labeled_mask, budget):
    """BASE as the paper's Alg. 2 reads, literally, whatever C and b: repeat passes over the classes
    0, 1, ..., C - 1; in each, the class adds the unlabeled item, not chosen yet, nearest its
    boundary (DCSDB: |z_p - z_c| / ||w_p - w_c|| to the predicted class p's boundary, the item's own
    margin distance for p itself); stop the moment b items are chosen (mid-pass when C does not
    divide b). Ties by the smaller index."""
    num_classes = len(weight)
    margins = [margin_distance(z, weight) for z in logits]
    chosen = []
    while len(chosen) < budget:
        for c in range(num_classes):
            if len(chosen) == budget:
                break
            candidates = []
            for i, z in enumerate(logits):
                if labeled_mask[i] or i in chosen:
                    continue
                own, p = margins[i]
                candidates.append((own if p == c else boundary_distance(z, weight, p, c), i))
            chosen.append(min(candidates)[1])
    return chosen


def k_center(features, labeled_mask, budget, candidates=None, centers=None):
    """Greedy k-center with explicit float64 distances; candidates/centers default to the pool."""
    candidates = [i for i in range(len(features)) if not labeled_mask[i]] if candidates is None else list(candidates)
    centers = [i for i in range(len(features)) if labeled_mask[i]] if centers is None else list(centers)
    points = np.asarray(features, dtype=np.float64)

    def nearest(i):
        return min(float(np.sqrt(((points[i] - points[c]) ** 2).sum())) for c in centers) if centers else math.inf

    picked = []
    for _ in range(budget):
        best = max((i for i in candidates if i not in picked), key=lambda i: (nearest(i), -i))
        picked.append(best)
        centers.append(best)
    return picked


def badge(features, weight, bias, labeled_mask, budget, rng):
    """BADGE with explicit C*d gradient embeddings and explicit distances (float64)."""
    logits = logits_of(features, weight, bias)
    candidates = [i for i in range(len(features)) if not labeled_mask[i]]
    embeddings = []
    for i in candidates:
        p = np.asarray(softmax(logits[i]))
        target = np.zeros_like(p)
        target[int(np.argmax(logits[i]))] = 1.0
        embeddings.append(np.outer(p - target, np.asarray(features[i], np.float64)).ravel())
    return [candidates[j] for j in kmeans_pp(np.asarray(embeddings), budget, rng)]


def kmeans_pp(embeddings, budget, rng):
    """k-means++ seeding as BADGE's code does it: the largest embedding first, then each next one
    drawn with probability proportional to its squared distance to the nearest one chosen."""
    picked = [int(np.argmax((embeddings**2).sum(axis=1)))]
    for _ in range(budget - 1):
        nearest = np.array([min(((embeddings[j] - embeddings[c]) ** 2).sum() for c in picked) for j in range(len(embeddings))])
        cumulative = np.cumsum(nearest)
        picked.append(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")))
    return picked


def partitioned_badge(features, weight, bias, labeled_mask, budget, partitions, seed, sketch_dim=512):
    """The paper's partitioned BADGE: split the unlabeled pool (and the labeled set) into p random
    parts, give each b/p of the budget (the first b mod p parts one more) and run BADGE's k-means++
    in each. Our scaling device, written out explicitly: each gradient embedding g_i = (p_i -
    e_yhat) outer x_i (C*d) is multiplied by an explicit (k, C*d) sketch matrix with rows a_k outer
    b_k / sqrt(k), Gaussian a_k, b_k. The random draws follow the order the sampler documents: the
    sketch's a then b, the permutations of the unlabeled and labeled items, one seed per part."""
    rng = np.random.default_rng(seed)
    num_classes, dim = len(weight), len(features[0])
    class_projection = rng.standard_normal((sketch_dim, num_classes)).astype(np.float32).astype(np.float64)
    feature_projection = rng.standard_normal((sketch_dim, dim)).astype(np.float32).astype(np.float64)
    sketch_matrix = np.stack([np.outer(class_projection[k], feature_projection[k]).ravel()
                              for k in range(sketch_dim)]) / math.sqrt(sketch_dim)
    logits = logits_of(features, weight, bias)
    unlabeled = np.array([i for i in range(len(features)) if not labeled_mask[i]])
    labeled = np.array([i for i in range(len(features)) if labeled_mask[i]])
    sketch = {}
    for i in unlabeled:
        p = np.asarray(softmax(logits[i]))
        p[int(np.argmax(logits[i]))] -= 1.0
        sketch[int(i)] = sketch_matrix @ np.outer(p, np.asarray(features[i], np.float64)).ravel()
    parts = min(partitions, len(unlabeled))
    unlabeled_parts = np.array_split(unlabeled[rng.permutation(len(unlabeled))], parts)
    np.array_split(labeled[rng.permutation(len(labeled))], parts)  # drawn, though BADGE never reads them
    seeds = rng.integers(0, 2**63, size=parts)
    chosen = []
    for index, (part, part_seed) in enumerate(zip(unlabeled_parts, seeds)):
        quota = budget // parts + (1 if index < budget % parts else 0)
        if quota == 0:
            continue
        members = sorted(int(i) for i in part)
        picks = kmeans_pp(np.array([sketch[i] for i in members]), quota, np.random.default_rng(int(part_seed)))
        chosen += [members[j] for j in picks]
    return chosen


def margin_clustering(logits, labeled_mask, budget, cluster_ids, factor):
    """Cluster-Margin from its definition: candidates, then round-robin, smallest cluster first."""
    margins = {}
    for i, z in enumerate(logits):
        if not labeled_mask[i]:
            p = sorted(softmax(z), reverse=True)
            margins[i] = p[0] - p[1]
    candidates = rank(margins, factor * budget)
    members = {}
    for i in candidates:  # candidates are in increasing margin, so each list is too
        members.setdefault(int(cluster_ids[i]), []).append(i)
    clusters = sorted(members, key=lambda c: (len(members[c]), c))
    picked = []
    depth = 0
    while len(picked) < min(budget, len(candidates)):
        for c in clusters:
            if depth < len(members[c]) and len(picked) < budget:
                picked.append(members[c][depth])
        depth += 1
    return picked


def balancing(features, labels, labeled_mask, budget, permutation):
    """Aggarwal et al.'s balancing, recomputing counts and centres from scratch at every pick."""
    n_classes = int(max(labels)) + 1
    labeled = [i for i in range(len(features)) if labeled_mask[i]]
    unlabeled = [i for i in range(len(features)) if not labeled_mask[i]]
    random_order = [unlabeled[j] for j in permutation]
    picked = []
    for step in range(budget):
        members = labeled + picked
        counts = [sum(1 for i in members if labels[i] == c) for c in range(n_classes)]
        mean = sum(counts) / n_classes
        majority = [c for c in range(n_classes) if counts[c] > mean]
        minority = [c for c in range(n_classes) if counts[c] <= mean]
        balancing_now = False
        if majority:
            gap = sum(counts[c] for c in majority) / len(majority) - sum(counts[c] for c in minority) / len(minority)
            balancing_now = budget - step <= len(minority) * gap
        if not balancing_now:
            picked.append(next(i for i in random_order if i not in picked))
            continue

        def centre(c):
            rows = [np.asarray(features[i], np.float64) for i in members if labels[i] == c]
            return sum(rows) / len(rows)

        rarest = counts.index(min(counts))
        best, best_ratio = None, math.inf
        for i in unlabeled:
            if i in picked:
                continue
            x = np.asarray(features[i], np.float64)
            numerator = float(np.sum((x - centre(rarest)) ** 2)) if counts[rarest] else 1.0
            denominator = min(float(np.sum((x - centre(c)) ** 2)) for c in majority)
            ratio = numerator / denominator if denominator > 0 else math.inf
            if ratio < best_ratio:
                best, best_ratio = i, ratio
        picked.append(best)
    return picked


def average_linkage(points, weights, clusters):
    """Weighted average-linkage HAC by brute force: merge the closest pair of groups until done."""
    groups = [[i] for i in range(len(points))]

    def distance(a, b):
        total = sum(weights[i] * weights[j] * math.dist(points[i], points[j]) for i in a for j in b)
        return total / (sum(weights[i] for i in a) * sum(weights[j] for j in b))

    while len(groups) > clusters:
        pairs = [(distance(groups[a], groups[b]), a, b) for a in range(len(groups)) for b in range(a + 1, len(groups))]
        _, a, b = min(pairs)
        groups[a] = groups[a] + groups[b]
        del groups[b]
    return sorted(sorted(group) for group in groups)
