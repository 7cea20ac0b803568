"""GPU figures at ImageNet scale on one CUDA device: feature extraction, the linear head's training
and selection from features with the fast product on the GPU (a benchmark, not a test).

    bash benchmarks/gpu.sh                 # on a machine with a CUDA GPU: all parts, sized for at most ~8 minutes on one H200
    python -m benchmarks.gpu --device cpu --n 3000 --d 64 --c 20 --images 256 --image-size 64 \\
        --labeled 300 --budget 50 --out /tmp/gpu.json     # the same code path on the CPU (tests/test_benchmark_smoke.py)

Each part is timed and written to ``--out`` (benchmarks/results/gpu.json) as soon as it ends, so
a run cut short keeps what it measured:

- ``selection``: each of ``--samplers`` at ``--budget`` on the ``--pool`` benchmark pool of ``--n``
  rows (float16 features, 3% labeled), with the fast product on the GPU in float32 and bfloat16;
  beside it the bare product on the GPU (each block sent, multiplied, its logits brought back, as
  selection does) and on the CPU (numpy): each selection's ``ratio_to_bare_product`` is to the bare
  product where its own fast product ran. Each selection's picks, order and scores are compared
  with the CPU product's (numpy, float32): they must be the same bytes.
- ``training``: the linear head (``train_linear_head``) on ``--labeled`` pool rows (an active
  learning round: early stopping, up to 50 epochs) and on every pool row for ``--probe-epochs``
  epochs (the full-data probe), seconds per epoch, on the device.
- ``extraction``: ``extract_features`` (EfficientNet-Lite0 at ``--image-size`` px; its packaged
  ImageNet weights when installed, else a seeded random initialisation: the speed is the same) on
  ``--images`` synthetic 28 x 28 uint8 images (the content does not change the speed), in bfloat16
  autocast and float32, and timm's bare forward on ready tensors beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from al_core.backbones import load_backbone
from al_core.features import extract_features
from al_core.samplers import select_with_scores
from al_core.linear import as_float32
from al_core.train import HeadConfig, feature_statistics, train_linear_head
from benchmarks.extraction import bare_forward
from benchmarks.realistic_pool import POOL_HELP, POOLS, build_named_pool
from benchmarks.selection_grid import same_selection
from pipeline.results_file import machine, write_results

IMAGENET_TRAIN = 1_281_167
CHUNK = 8192


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (torch)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_products(features, weight, bias, device: torch.device) -> dict:
    """Seconds of the plain float32 product over the pool in CHUNK-row blocks: numpy on the CPU, and
    torch on ``device`` (block converted on the CPU, sent, multiplied, logits brought back)."""
    weight_t = torch.from_numpy(weight).to(device).T
    seconds = {}
    for where in ("cpu_numpy", "device"):
        started = time.perf_counter()
        for start in range(0, features.shape[0], CHUNK):
            block = as_float32(features[start:start + CHUNK])
            if where == "cpu_numpy":
                logits = block @ weight.T
            else:
                logits = (torch.from_numpy(block).to(device) @ weight_t).cpu().numpy()
            logits += bias
        synchronize(device)
        seconds[where] = time.perf_counter() - started  # rounded where reported: a tiny pool takes under a millisecond
    return seconds


def run_selection(args, device: torch.device, report: dict) -> None:
    features, weight, bias, _ = build_named_pool(args.pool, args.workdir, args.n, args.d, args.c, args.seed)
    labeled = np.zeros(args.n, dtype=bool)
    labeled[np.random.default_rng(args.seed + 2).choice(args.n, size=max(1, args.n * 3 // 100), replace=False)] = True
    bare = bare_products(features, weight, bias, device)
    rows = []
    for name in args.samplers.split(","):
        common = dict(labeled_mask=labeled, seed=args.seed, head_weight=weight, head_bias=bias, features=features, chunk_size=CHUNK)
        timed = {}
        for label, precision, where in (("cpu_numpy_float32", "float32", None), ("device_float32", "float32", str(device)),
                                        ("device_bfloat16", "bfloat16", str(device))):
            started = time.perf_counter()
            selection = select_with_scores(name, args.budget, precision=precision, device=where, **common)
            timed[label] = (time.perf_counter() - started, selection)
        reference = timed["cpu_numpy_float32"][1]
        row = {"sampler": name, "budget": args.budget}
        for label, (seconds, selection) in timed.items():
            plain = bare["cpu_numpy"] if label.startswith("cpu") else bare["device"]  # the same product without selection
            row[label] = {"seconds": round(seconds, 3), "ratio_to_bare_product": round(seconds / plain, 3),
                          "same_as_cpu": same_selection(selection, reference),
                          "refined_rows": selection.notes.get("refined_rows"), "partial_rows": selection.notes.get("partial_rows")}
        print(row, flush=True)
        rows.append(row)
    report["selection"] = {"pool": args.pool, "n": args.n, "d": args.d, "c": args.c, "labeled_fraction": 0.03,
                           "bare_product_seconds": {where: round(value, 3) for where, value in bare.items()}, "samplers": rows}


def run_training(args, device: torch.device, report: dict) -> None:
    features, _, _, labels = build_named_pool(args.pool, args.workdir, args.n, args.d, args.c, args.seed)
    rng = np.random.default_rng(args.seed + 3)
    held = np.sort(rng.choice(args.n, size=min(10_000, args.n // 10), replace=False))
    mean, std = feature_statistics(features)
    common = dict(num_classes=args.c, seed=args.seed, mean=mean, std=std, device=str(device))
    rows = {}
    labeled = np.sort(rng.choice(args.n, size=args.labeled, replace=False))
    started = time.perf_counter()
    head = train_linear_head(features, labels[labeled], features[held], labels[held], train_rows=labeled, config=HeadConfig(), **common)
    synchronize(device)
    rows["round_head"] = {"rows": int(labeled.shape[0]), "seconds": round(time.perf_counter() - started, 3), **head.history}
    print(rows["round_head"], flush=True)
    everything = np.arange(args.n)
    limit = max(2 * 2**30, args.n * args.d * 4 + 2**20)  # the whole pool standardised once, in memory
    started = time.perf_counter()
    head = train_linear_head(features, labels, features[held], labels[held], train_rows=everything, memory_limit_bytes=limit,
                             config=HeadConfig(max_epochs=args.probe_epochs, patience=args.probe_epochs), **common)
    synchronize(device)
    rows["full_probe"] = {"rows": args.n, "seconds": round(time.perf_counter() - started, 3), **head.history}
    print(rows["full_probe"], flush=True)
    report["training"] = rows


def run_extraction(args, device: torch.device, report: dict) -> None:
    try:
        model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
        weights = "packaged ImageNet weights"
    except Exception as missing:  # the weights' package is not installed: the speed does not depend on them
        model, preprocessing, _ = load_backbone("efficientnet_lite0", "none")
        weights = f"seeded random initialisation ({type(missing).__name__}: packaged weights not available)"
    images = np.random.default_rng(args.seed).integers(0, 256, size=(args.images, 28, 28), dtype=np.uint8)
    rows = []
    for precision in ("bfloat16", "float32"):
        common = dict(image_size=args.image_size, preprocessing=preprocessing, batch_size=args.batch_size,
                      device=str(device), progress=False, precision=precision)
        extract_features(model, images[: args.batch_size], work_dir=tempfile.mkdtemp(), **common)  # warm-up
        synchronize(device)
        started = time.perf_counter()
        features = extract_features(model, images, work_dir=tempfile.mkdtemp(dir=args.workdir), **common)
        seconds = time.perf_counter() - started
        bare = bare_forward(model, min(args.images, 50 * args.batch_size), args.image_size, args.batch_size, device,
                            precision == "bfloat16")
        rows.append({"precision": precision, "images": args.images, "seconds": round(seconds, 2),
                     "images_per_second": round(args.images / seconds, 1), "bare_forward_images_per_second": round(bare, 1),
                     "projected_seconds_for_1281167_images": round(IMAGENET_TRAIN / (args.images / seconds), 1),
                     "feature_dim": int(features.shape[1])})
        print(rows[-1], flush=True)
    report["extraction"] = {"backbone": f"efficientnet_lite0, {weights}", "image_size": args.image_size,
                            "batch_size": args.batch_size, "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (cpu runs the same code path, for the smoke test)")
    parser.add_argument("--parts", default="selection,training,extraction", help="which parts to run, in this order")
    parser.add_argument("--n", type=int, default=IMAGENET_TRAIN, help="pool rows")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--pool", choices=POOLS, default="realistic", help=POOL_HELP)
    parser.add_argument("--samplers", default="base,mase,margin")
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--labeled", type=int, default=10_000, help="rows of the round's head")
    parser.add_argument("--probe-epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=400_000, help="images to embed (synthetic); the 1.28M time is projected from the rate")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.work/gpu"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu: torch sees no CUDA GPU here; run it where there is one (or --device cpu for the smoke test)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    report = {"device": device_name(device), "machine": machine(torch=torch.__version__, threads=torch.get_num_threads()),
              "command": "python -m benchmarks.gpu " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
              "date": time.strftime("%Y-%m-%d"), "parts_seconds": {}}
    parts = {"selection": run_selection, "training": run_training, "extraction": run_extraction}
    for part in args.parts.split(","):
        started = time.perf_counter()
        parts[part](args, device, report)
        report["parts_seconds"][part] = round(time.perf_counter() - started, 1)
        write_results(args.out, report)  # after every part: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
