"""Checkpoint layouts of self-supervised and supervised training code, loaded into timm backbones."""

from argparse import Namespace

import pytest
import torch

from al_core.backbones import backbone_state, load_backbone
from al_core.checkpoints import adapt, unwrap
from al_core.errors import InputError


@pytest.fixture(scope="module")
def source():
    """A resnet10t with weights unlike timm's initialisation, to recognise after loading."""
    model, _, _ = load_backbone("resnet10t", "none")
    generator = torch.Generator().manual_seed(1)
    return {key: torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
            for key, value in backbone_state(model).items()}


def head(prefix):
    return {f"{prefix}fc.0.weight": torch.zeros(64, 512), f"{prefix}fc.2.weight": torch.zeros(16, 64)}


LAYOUTS = {
    "moco_v2": lambda s: {"epoch": 200, "arch": "resnet10t", "state_dict": {
        **{f"module.encoder_q.{k}": v for k, v in s.items()}, **{f"module.encoder_k.{k}": v * 0 for k, v in s.items()},
        **head("module.encoder_q."), "module.queue": torch.zeros(16, 8), "module.queue_ptr": torch.zeros(1)}},
    "moco_v3": lambda s: {"state_dict": {
        **{f"module.base_encoder.{k}": v for k, v in s.items()}, **{f"module.momentum_encoder.{k}": v * 0 for k, v in s.items()},
        "module.predictor.0.weight": torch.zeros(8, 8)}},
    "dino/esvit": lambda s: {"teacher": {**{f"backbone.{k}": v for k, v in s.items()}, "head.mlp.0.weight": torch.zeros(8, 8)},
                             "student": {f"module.backbone.{k}": v * 0 for k, v in s.items()}, "epoch": 3},
    "simclr": lambda s: {"state_dict": {**{f"encoder.{k}": v for k, v in s.items()}, "projector.0.weight": torch.zeros(8, 8)}},
    "ddp": lambda s: {"model": {f"module.{k}": v for k, v in s.items()}},
    "timm/torchvision": lambda s: dict(s),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_loads_the_backbone_exactly(layout, source, tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save(LAYOUTS[layout](source), path)
    model, _, report = load_backbone("resnet10t", str(path))
    assert report.adapter == layout
    counted = [key for key in source if not key.endswith("num_batches_tracked")]
    assert report.matched == report.expected == len(counted) and not report.missing
    state = model.state_dict()
    for key, value in source.items():
        assert torch.equal(state[key], value), key


def test_dino_student_on_request(source, tmp_path):
    path = tmp_path / "dino.pth"
    torch.save(LAYOUTS["dino/esvit"](source), path)
    model, _, report = load_backbone("resnet10t", str(path), part="student")
    assert report.adapter == "ddp" or report.prefix == "module.backbone."
    assert torch.equal(model.state_dict()["conv1.0.weight"], source["conv1.0.weight"] * 0)
    with pytest.raises(InputError, match="no entry 'momentum'"):
        load_backbone("resnet10t", str(path), part="momentum")


def test_torchvision_resnet_names_load_into_timm():
    import torchvision

    reference = torchvision.models.resnet18(weights=None).state_dict()
    model, _, _ = load_backbone("resnet18", "none")
    matched, report = adapt(reference, backbone_state(model))
    assert report.adapter == "timm/torchvision" and not report.missing
    assert set(report.unused) == {"fc.weight", "fc.bias"}  # the classifier is not part of the backbone


def test_a_checkpoint_of_another_architecture_fails_loudly(tmp_path):
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(InputError, match=r"matches only \d+ of the model's \d+ backbone tensors.*this architecture"):
        load_backbone("resnet10t", str(path))


def test_pickled_python_objects_get_an_actionable_error(source, tmp_path):
    path = tmp_path / "dino_full.pth"
    torch.save({"teacher": {f"backbone.{k}": v for k, v in source.items()}, "args": Namespace(arch="resnet10t")}, path)
    with pytest.raises(InputError, match="save its weights alone"):
        load_backbone("resnet10t", str(path))


def test_unwrap_errors_name_what_is_there():
    with pytest.raises(InputError, match="found no tensors"):
        unwrap({"epoch": 3, "optimizer": {"lr": 0.1}})
    assert list(unwrap({"state_dict": {"a": torch.zeros(1)}, "epoch": 1})) == ["a"]
