"""Feature-extraction throughput of the default backbone on this machine (a benchmark, not a test).

Embeds ``--images`` Fashion-MNIST training images with EfficientNet-Lite0 (packaged ImageNet
weights) at each ``--sizes``, in each ``--precisions`` (``extract_features``: decoding, resizing,
normalising, sharding), and times timm's bare forward on ready tensors of the same shape and
precision beside it (the ceiling); writes images/s, with the machine (its bf16 instructions
included), to benchmarks/results/extraction.json (or ``--out``).

    python -m benchmarks.extraction                       # CPU, 96 and 224 px, float32 and bfloat16
    python -m benchmarks.extraction --device cuda --images 20000 --batch-size 512 --out benchmarks/results/extraction_gpu.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from al_core.backbones import load_backbone
from al_core.features import extract_features, pick_device
from pipeline.results_file import machine, write_results


@torch.inference_mode()
def bare_forward(model, images: int, size: int, batch_size: int, device, bf16: bool) -> float:
    """Images/s of ``model`` alone on ready (batch, 3, size, size) channels_last tensors."""
    model = model.to(device).to(memory_format=torch.channels_last).eval()
    batch = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        model(batch)  # warm-up
        started = time.perf_counter()
        for _ in range(max(1, images // batch_size)):
            model(batch)
    return max(1, images // batch_size) * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--sizes", default="96,224")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extraction.json"))
    args = parser.parse_args()

    from al_core.data import load_fashion_mnist  # here: benchmarks.gpu imports this module where polars is not installed

    images = load_fashion_mnist(args.root)["train"][0][: args.images]
    model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
    device = pick_device(args.device)
    rows = []
    for size in map(int, args.sizes.split(",")):
        for precision in args.precisions.split(","):
            common = dict(image_size=size, preprocessing=preprocessing, batch_size=args.batch_size, device=args.device,
                          progress=False, precision=precision)
            extract_features(model, images[: args.batch_size], work_dir=tempfile.mkdtemp(), **common)  # warm-up
            started = time.perf_counter()
            features = extract_features(model, images, work_dir=tempfile.mkdtemp(), **common)
            seconds = time.perf_counter() - started
            bare = bare_forward(model, len(images), size, args.batch_size, device, precision == "bfloat16")
            rows.append({"image_size": size, "precision": precision, "images": int(len(images)), "seconds": round(seconds, 2),
                         "images_per_second": round(len(images) / seconds, 1),
                         "bare_forward_images_per_second": round(bare, 1),
                         "fraction_of_bare_forward": round(len(images) / seconds / bare, 3),
                         "feature_dim": int(features.shape[1])})
            print(rows[-1], flush=True)
    for row in rows:
        if row["precision"] != "float32":
            base = next(r for r in rows if r["image_size"] == row["image_size"] and r["precision"] == "float32")
            row["speedup_over_float32"] = round(row["images_per_second"] / base["images_per_second"], 3)
    report = {
        "backbone": "efficientnet_lite0 (packaged ImageNet weights)",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "machine": machine(torch=torch.__version__, threads=torch.get_num_threads()),
        "batch_size": args.batch_size,
        "results": rows,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
