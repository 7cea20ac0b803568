"""Reading self-supervised and supervised checkpoints into a timm backbone.

Checkpoints come wrapped in many layouts. ``unwrap`` finds the state dict inside the file
(``state_dict``, ``model``, DINO's ``teacher``/``student``...), and the adapters of ``ADAPTERS``
rename its keys to timm's: each is a key prefix that the layout puts in front of the backbone
(``module.encoder_q.`` for MoCo v2, ``module.base_encoder.`` for MoCo v3, ``backbone.`` for DINO
and EsViT, ``encoder.``/``backbone.`` for SimCLR ports, nothing for torchvision ResNets and plain
timm files, whose names timm's ResNets share). ``adapt`` tries them all and keeps the one under
which most tensors match the model by name and shape; heads, projectors, momentum encoders and
queues stay behind and are reported as unused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from al_core.errors import InputError

# name -> key prefixes of the backbone in that layout (tried in order; the best match wins).
ADAPTERS: dict[str, tuple[str, ...]] = {
    "timm/torchvision": ("",),
    "ddp": ("module.",),
    "moco_v2": ("module.encoder_q.", "encoder_q."),
    "moco_v3": ("module.base_encoder.", "base_encoder."),
    "dino/esvit": ("module.backbone.", "backbone."),
    "simclr": ("module.encoder.", "encoder.", "model.backbone.", "model.encoder.", "model."),
}
# Where a training checkpoint keeps the weights; DINO/EsViT evaluate the teacher.
CONTAINER_KEYS = ("state_dict", "model", "teacher", "student", "net", "network", "module")
# A backbone with a tenth of its tensors at random initialisation is not the pretrained model.
MIN_MATCHED_FRACTION = 0.9


@dataclass(frozen=True)
class LoadReport:
    """What a checkpoint load did: the layout detected, and the keys that did not line up."""

    adapter: str
    prefix: str
    matched: int
    expected: int
    missing: list[str] = field(default_factory=list)  # model tensors left at their initial values
    unused: list[str] = field(default_factory=list)  # checkpoint tensors not loaded (heads, momentum encoders...)

    def summary(self) -> str:
        return (f"layout {self.adapter} (prefix {self.prefix!r}): {self.matched}/{self.expected} backbone tensors loaded, "
                f"{len(self.missing)} missing (e.g. {self.missing[:3]}), {len(self.unused)} checkpoint tensors unused "
                f"(e.g. {self.unused[:3]})")


def _is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def unwrap(checkpoint, part: str = "auto") -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint; ``part`` picks a container key (e.g. ``student``)."""
    if part != "auto":
        if not isinstance(checkpoint, dict) or part not in checkpoint:
            keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise InputError(f"checkpoint has no entry {part!r}; it has {keys}")
        checkpoint = checkpoint[part]
    for _ in range(3):  # e.g. {"teacher": {"state_dict": {...}}}
        if _is_state_dict(checkpoint):
            return checkpoint
        if not isinstance(checkpoint, dict):
            break
        inner = next((checkpoint[key] for key in CONTAINER_KEYS if isinstance(checkpoint.get(key), dict)), None)
        if inner is None:
            tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
            if tensors:  # a state dict with a few non-tensor entries (epoch, args...)
                return tensors
            break
        checkpoint = inner
    raise InputError(f"found no tensors in the checkpoint; top-level entries: "
                     f"{sorted(checkpoint)[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__}")


def adapt(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename ``state``'s keys onto ``target``'s (the model's backbone state dict) by the best adapter.

    Returns the tensors to load (names and shapes matching ``target``) and the report. Raises
    InputError naming every layout's match count when under 90% of the backbone's tensors match
    under any of them (BatchNorm's ``num_batches_tracked`` counters are not counted: converted
    checkpoints often drop them). O(number of keys x adapters).
    """
    counted = [key for key in target if not key.endswith("num_batches_tracked")]
    best = None
    tried = []
    for adapter, prefixes in ADAPTERS.items():
        for prefix in prefixes:
            renamed = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            matched = {key: value for key, value in renamed.items() if key in target and target[key].shape == value.shape}
            hits = sum(key in matched for key in counted)
            tried.append((adapter, prefix, hits))
            if best is None or hits > best[3]:
                best = (adapter, prefix, matched, hits)
    adapter, prefix, matched, hits = best
    if hits < MIN_MATCHED_FRACTION * len(counted):
        attempts = ", ".join(f"{name} {prefix!r}: {count}" for name, prefix, count in tried if count)
        raise InputError(
            f"checkpoint matches only {hits} of the model's {len(counted)} backbone tensors under any known "
            f"layout ({attempts or 'none matched at all'}); checkpoint keys look like {list(state)[:4]}, "
            f"the model's like {list(target)[:4]}. Is it a checkpoint of this architecture?"
        )
    used = {prefix + key for key in matched}
    report = LoadReport(
        adapter=adapter, prefix=prefix, matched=hits, expected=len(counted),
        missing=[key for key in counted if key not in matched],
        unused=[key for key in state if key not in used],
    )
    return matched, report
