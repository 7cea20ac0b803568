"""Linear-probe accuracy on bfloat16 features against float32 features (a benchmark, not a test).

Embeds ``--train`` Fashion-MNIST training images (the last ``--val`` of them held out for early
stopping) and ``--test`` test images with the default backbone (EfficientNet-Lite0, packaged
ImageNet weights, ``--size`` px) twice, in float32 and in bfloat16 autocast, trains the same
linear probe (default ``train`` settings, same seed) on each, and reports both top-1 accuracies
and how far the features moved. On a CPU without bfloat16 instructions torch emulates them:
slow, with the same number format.

    python -m benchmarks.bf16_probe_parity                   # 8,000 train + 2,000 test images
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from al_core.backbones import load_backbone
from al_core.data import load_fashion_mnist
from al_core.features import extract_features
from al_core.metrics import topk_accuracy
from al_core.train import HeadConfig, feature_statistics, train_linear_head
from pipeline.results_file import machine, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bf16_probe_parity.json"))
    args = parser.parse_args()

    data = load_fashion_mnist(args.root)
    train_images, train_labels = data["train"][0][: args.train], data["train"][1][: args.train].astype(np.int64)
    test_images, test_labels = data["test"][0][: args.test], data["test"][1][: args.test].astype(np.int64)
    model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
    fit = slice(0, args.train - args.val)
    held = slice(args.train - args.val, args.train)
    results, features = {}, {}
    for precision in ("float32", "bfloat16"):
        started = time.perf_counter()
        embedded = [extract_features(model, images, image_size=args.size, preprocessing=preprocessing, work_dir=tempfile.mkdtemp(),
                                     precision=precision, progress=True) for images in (train_images, test_images)]
        seconds = time.perf_counter() - started
        features[precision] = embedded
        mean, std = feature_statistics(embedded[0][fit])
        head = train_linear_head(embedded[0][fit], train_labels[fit], embedded[0][held], train_labels[held], num_classes=10,
                                 config=HeadConfig(), seed=args.seed, mean=mean, std=std)
        top1 = topk_accuracy(head.logits(embedded[1]), test_labels, 1)
        results[precision] = {"test_top1": round(float(top1), 4), "extraction_seconds": round(seconds, 1),
                              "images_per_second": round((args.train + args.test) / seconds, 1)}
        print(precision, results[precision], flush=True)
    reference, low = (np.concatenate(features[p]).astype(np.float32) for p in ("float32", "bfloat16"))
    relative = np.linalg.norm(low - reference, axis=1) / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
    report = {
        "machine": machine(),
        "setup": {"train": args.train - args.val, "val": args.val, "test": args.test, "size": args.size, "seed": args.seed,
                  "backbone": "efficientnet_lite0 (packaged ImageNet weights)", "head": "default train settings (HeadConfig())"},
        "results": results,
        "top1_difference_points": round(100 * (results["bfloat16"]["test_top1"] - results["float32"]["test_top1"]), 2),
        "feature_relative_difference": {"median": float(np.median(relative)), "max": float(relative.max())},
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
