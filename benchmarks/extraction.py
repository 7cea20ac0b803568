"""Feature-extraction throughput of the default backbone on this machine (a benchmark, not a test).

Embeds ``--images`` Fashion-MNIST training images with EfficientNet-Lite0 (packaged ImageNet
weights) at each ``--sizes`` and writes images/s, with the machine, to
benchmarks/results/extraction.json (or ``--out``). On a GPU (``--device cuda``) the same code
runs in bf16 autocast and channels_last.

    python -m benchmarks.extraction                       # CPU, 96 and 224 px
    python -m benchmarks.extraction --device cuda --images 20000 --batch-size 512 --out benchmarks/results/extraction_gpu.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from al_core.backbones import load_backbone
from al_core.data import load_fashion_mnist
from al_core.features import extract_features, pick_device
from benchmarks.results_file import machine, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--sizes", default="96,224")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extraction.json"))
    args = parser.parse_args()

    images = load_fashion_mnist(args.root)["train"][0][: args.images]
    model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
    device = pick_device(args.device)
    rows = []
    for size in map(int, args.sizes.split(",")):
        extract_features(model, images[: args.batch_size], image_size=size, preprocessing=preprocessing,
                         work_dir=tempfile.mkdtemp(), batch_size=args.batch_size, device=args.device, progress=False)  # warm-up
        started = time.perf_counter()
        features = extract_features(model, images, image_size=size, preprocessing=preprocessing, work_dir=tempfile.mkdtemp(),
                                    batch_size=args.batch_size, device=args.device, progress=False)
        seconds = time.perf_counter() - started
        rows.append({"image_size": size, "images": int(len(images)), "seconds": round(seconds, 2),
                     "images_per_second": round(len(images) / seconds, 1), "feature_dim": int(features.shape[1])})
        print(rows[-1], flush=True)
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
