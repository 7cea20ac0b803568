import numpy as np
import pytest

from al_core.data import load_fashion_mnist
from al_core.errors import DatasetMissingError, InputError
from tests.fakes import write_fake_fashion_mnist, write_idx


def test_reads_gzipped_idx(tmp_path):
    root = write_fake_fashion_mnist(tmp_path / "fm", n_train=30, n_test=10)
    splits = load_fashion_mnist(root)
    images, labels = splits["train"]
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (30,) and labels.dtype == np.int64
    assert splits["test"][0].shape == (10, 28, 28)


def test_missing_dataset_says_how_to_install(tmp_path):
    with pytest.raises(DatasetMissingError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_corrupt_file_is_named(tmp_path):
    root = write_fake_fashion_mnist(tmp_path / "fm", n_train=5, n_test=5)
    (root / "train-images-idx3-ubyte.gz").unlink()
    (root / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3 + b"short")
    with pytest.raises(InputError, match="train-images-idx3-ubyte holds 5 bytes of data"):
        load_fashion_mnist(root)


def test_uncompressed_files_are_read(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for prefix, n in (("train", 4), ("t10k", 2)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", np.zeros((n, 28, 28)), compress=False)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n), compress=False)
    assert load_fashion_mnist(root)["test"][1].tolist() == [0, 1]
