"""The memory guard: sizes, the limit's sources, and refusals before anything is allocated."""

import h5py
import numpy as np
import pytest

from napari_unrollrecon.engine import io, memory, problems, registry
from napari_unrollrecon.engine.pipeline import MaskSettings
from napari_unrollrecon.engine.stream import collect, stream


@pytest.mark.parametrize("text, value", [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5k", 1536), ("100", 100),
                                         ("2GiB", 2 * 2**30), ("0", 0), ("off", 0)])
def test_parse_size(text, value):
    assert memory.parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "-1G", "nanG", "G"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(ValueError, match="not a size"):
        memory.parse_size(text)


def test_limit_from_environment_and_default(monkeypatch):
    monkeypatch.setenv(memory.ENV, "3M")
    assert memory.limit() == (3 * 2**20, f"{memory.ENV}=3M")
    monkeypatch.delenv(memory.ENV)
    lim, source = memory.limit()
    assert 0 < lim <= memory.available() and "available" in source


def test_check_names_need_and_limit(monkeypatch):
    monkeypatch.setenv(memory.ENV, "1M")
    memory.check(2**20, "fits")
    with pytest.raises(memory.MemoryLimitError, match=r"thing needs about 2\.0 MiB, more than the memory limit of 1\.0 MiB"):
        memory.check(2**21, "thing")
    monkeypatch.setenv(memory.ENV, "0")
    memory.check(2**60, "no limit")


def test_h5_size_bomb_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setenv(memory.ENV, "1G")
    p = tmp_path / "bomb.h5"
    with h5py.File(p, "w") as f:  # declares 40 GB, stores nothing
        f.create_dataset("image", shape=(100_000, 100_000), dtype="f4", chunks=(64, 64))
    with pytest.raises(io.UnusableFileError, match=r"reading bomb\.h5 \(100000 × 100000 values\) needs about"):
        io.read(p)


@pytest.mark.parametrize("ext", [".npy", ".npz", ".png", ".tif", ".mat"])
def test_every_reader_guards(tmp_path, monkeypatch, ext):
    import imageio.v3 as iio
    import scipy.io
    import tifffile

    a = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    p = tmp_path / f"a{ext}"
    {".npy": lambda: np.save(p, a), ".npz": lambda: np.savez(p, x=a), ".png": lambda: iio.imwrite(p, a),
     ".tif": lambda: tifffile.imwrite(p, a), ".mat": lambda: scipy.io.savemat(p, {"x": a})}[ext]()
    assert io.read(p).data.shape == (128, 128)
    monkeypatch.setenv(memory.ENV, "64K")  # 128² × (itemsize + 16) > 64 KiB
    with pytest.raises(io.UnusableFileError, match="memory limit"):
        io.read(p)


def test_run_and_mask_guards(monkeypatch):
    monkeypatch.setenv(memory.ENV, "4M")
    img = np.random.default_rng(0).random((256, 256)).astype(np.float32)
    prob = problems.mri_from_image(img, np.ones((256, 256), np.float32))
    with pytest.raises(memory.MemoryLimitError, match=r"TV \(primal-dual\) on a 256 × 256 problem needs about 8\.0 MiB"):
        collect(stream(registry.get("tv"), prob))
    with pytest.raises(memory.MemoryLimitError, match="a poisson mask of 1024 × 1024"):
        MaskSettings(kind="poisson", ratio=0.2).make((1024, 1024))
    monkeypatch.setenv(memory.ENV, "off")
    _, res = collect(stream(registry.get("zero-filled"), prob))
    assert np.isfinite(res.image).all()
