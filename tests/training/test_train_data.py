"""Training data: sources, conversions, patches, leakage guards (synthetic files; real data skips)."""

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io

from training import config as C
from training import data as D


def _cfg(train, val, **data):
    return C.validate({"method": "m", "data": {"train": train, "val": val, **data}})["data"]


def test_synthetic_sources_are_deterministic_and_normalised():
    d = _cfg([{"kind": "synthetic", "n": 5, "size": 24, "seed": 3}], [{"kind": "synthetic", "n": 2, "seed": 4}])
    a, _, _ = D.build(d)
    b, _, _ = D.build(d)
    assert len(a) == 5 and a.images[0].shape == (24, 24) and a.images[0].dtype == np.complex64
    assert all(np.allclose(x, y) for x, y in zip(a.images, b.images))
    assert all(np.isclose(np.abs(x).max(), 1.0) for x in a.images)


def test_png_folder_mat_and_select(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(1, 6):
        iio.imwrite(folder / f"im{i}.png", np.full((16, 16), 20 * i, np.uint8))
    scipy.io.savemat(tmp_path / "one.mat", {"img": np.arange(256.0).reshape(16, 16)})
    d = _cfg([{"kind": "files", "path": str(folder), "pattern": "*.png", "select": [[2, 3]]}],
             [{"kind": "files", "path": str(tmp_path / "one.mat"), "key": "img"}], target="real", normalise="none")
    train, val, desc = D.build(d)
    assert [float(x.max()) for x in train.images] == [40.0, 60.0]  # natural order, 1-based select
    assert val.images[0][15, 15] == 255.0 and desc["n_train"] == 2


def test_h5_ri_layout_offset_clip_minmax(tmp_path):
    path = tmp_path / "ct.h5"
    with h5py.File(path, "w") as f:
        f["ct_number"] = np.stack([np.linspace(0, 4000, 64).reshape(8, 8)] * 3).astype(np.uint16)
        f["ri"] = np.ones((2, 2, 8, 8), np.float16) * np.array([3, 4], np.float16)[None, :, None, None]
    d = _cfg([{"kind": "h5", "path": str(path), "dataset": "ct_number", "offset": -1024, "clip": [-1000, 2000],
               "select": [[1, 2]]}], [{"kind": "h5", "path": str(path), "dataset": "ct_number", "select": [[3, 3]]}],
             target="real", normalise="minmax")
    train, val, _ = D.build(d)
    assert len(train) == 2 and len(val) == 1
    assert train.images[0].min() == 0 and train.images[0].max() == 1
    plateau = np.sum(train.images[0] == 1)  # values above 3024 CT number clip to the same top value
    assert plateau == np.sum(np.linspace(0, 4000, 64) - 1024 >= 2000)
    d = _cfg([{"kind": "h5", "path": str(path), "dataset": "ri", "layout": "ri"}],
             [{"kind": "synthetic", "n": 1}], normalise="none")
    train, _, _ = D.build(d)
    assert np.allclose(train.images[0], 3 + 4j)


def _fake_siat(path, numbers):
    with h5py.File(path, "w") as f:
        f["image_ri"] = np.random.default_rng(0).standard_normal((len(numbers), 2, 8, 8)).astype(np.float16)
        f["source_index"] = np.asarray(numbers, np.int32)


def test_siat_rows_come_only_from_test_free_blocks(tmp_path):
    path = tmp_path / "siat500.h5"
    numbers = [n for n in range(1, 501) if n not in (10, 30, 70, 128)]
    _fake_siat(path, numbers)
    d = _cfg([{"kind": "siat500", "path": str(path), "select": [[1, 480]]}],
             [{"kind": "siat500", "path": str(path), "select": [[481, 500]]}])
    train, val, _ = D.build(d)
    got = np.array([int(i.split("#")[1]) for i in train.ids])
    ok = np.zeros_like(got, bool)
    for a, b in D.SIAT_SAFE_BLOCKS:
        ok |= (got >= a) & (got <= b)
    assert ok.all() and len(got) == 20 + 40 + 80
    assert len(val) == 20 and train.images[0].dtype == np.complex64
    # the same file read as a generic h5 source is still guarded (file name siat500.h5)
    d = _cfg([{"kind": "h5", "path": str(path), "dataset": "image_ri", "layout": "ri"}],
             [{"kind": "synthetic", "n": 1}])
    assert len(D.build(d)[0]) == 160
    d = _cfg([{"kind": "siat500", "path": str(path), "select": [[1, 40]]}], [{"kind": "synthetic", "n": 1}])
    with pytest.raises(D.DataError, match="blocks with HGGDP test slices"):
        D.build(d)
    off = _cfg([{"kind": "siat500", "path": str(path), "select": [[1, 40]]}], [{"kind": "synthetic", "n": 1}],
               exclude_test31_neighbours=False)
    assert len(D.build(off)[0]) == 38  # 10 and 30 are not in the file


@pytest.mark.parametrize("rel", ["ISTA-Net-PyTorch/data/BrainImages_test", "GMSD-AAPM-CT/Test_CT",
                                 "HGGDP/hggdp_rec/test_image31", "Deep-ADMM-Net/data/Chest_data"])
def test_benchmark_test_sets_are_refused(tmp_path, rel):
    folder = tmp_path / rel
    folder.mkdir(parents=True)
    iio.imwrite(folder / "a.png", np.zeros((8, 8), np.uint8))
    d = _cfg([{"kind": "files", "path": rel}], [{"kind": "synthetic", "n": 1}], root=str(tmp_path))
    with pytest.raises(D.DataError, match="benchmark test set"):
        D.build(d)
    parent = _cfg([{"kind": "files", "path": str(tmp_path), "pattern": "**/*.png"}],
                  [{"kind": "synthetic", "n": 1}], root=str(tmp_path))
    with pytest.raises(D.DataError, match="contains"):
        D.build(parent)


def test_heart_patient_33_is_refused_beside_training_patients(tmp_path):
    folder = tmp_path / "CGPD-CSNet/data/heart_test"
    folder.mkdir(parents=True)
    for name in ("mr_heart_p31t01z0.png", "mr_heart_p32t01z0.png", "mr_heart_p33t01z0.png"):
        iio.imwrite(folder / name, np.full((8, 8), 9, np.uint8))
    rel = "CGPD-CSNet/data/heart_test"
    ok = _cfg([{"kind": "files", "path": rel, "pattern": "mr_heart_p3[12]*.png", "fit": [12, 6]}],
              [{"kind": "synthetic", "n": 1}], root=str(tmp_path))
    train = D.build(ok)[0]
    assert len(train) == 2 and train.images[0].shape == (12, 6)
    assert train.images[0][0].max() == 0 and train.images[0][5].min() == 1  # zero-padded rows, cropped columns
    every = _cfg([{"kind": "files", "path": rel}], [{"kind": "synthetic", "n": 1}], root=str(tmp_path))
    with pytest.raises(D.DataError, match="patient 33"):
        D.build(every)


def test_train_and_validation_must_be_disjoint_and_val_split_holds_out_the_tail(tmp_path):
    src = {"kind": "synthetic", "n": 10, "seed": 2}
    with pytest.raises(D.DataError, match="both the training and the validation"):
        D.build(_cfg([src], [src]))
    train, val, _ = D.build(_cfg([src], [], val_split=0.2))
    assert len(train) == 8 and len(val) == 2 and not set(train.ids) & set(val.ids)
    assert val.ids == ["synthetic(seed=2)#8", "synthetic(seed=2)#9"]


def test_patch_sampler_crops_flips_and_is_seeded():
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    s = D.PatchSampler(D.ImageSet([img], ["a"]), patch=4, flips=True)
    a = s.batch(50, np.random.default_rng(1))
    b = s.batch(50, np.random.default_rng(1))
    assert a.shape == (50, 4, 4) and np.array_equal(a, b)
    # every patch is a (possibly flipped) 4x4 window of the image
    windows = {img[y:y + 4, x:x + 4].tobytes() for y in range(5) for x in range(5)}
    flipped = {np.ascontiguousarray(w).tobytes() for y in range(5) for x in range(5)
               for w in (img[y:y + 4, x:x + 4][:, ::-1], img[y:y + 4, x:x + 4][::-1], img[y:y + 4, x:x + 4][::-1, ::-1])}
    assert all(p.tobytes() in windows | flipped for p in a)
    assert any(p.tobytes() in flipped - windows for p in a)  # flips happen
    with pytest.raises(D.DataError, match="larger than images"):
        D.PatchSampler(D.ImageSet([img], ["a"]), patch=16)


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(p.stem for p in C.CONFIG_DIR.glob("*.toml")))
def test_shipped_configs_load_their_data(data_root, monkeypatch, name):
    monkeypatch.setenv("UNROLLRECON_DATA", str(data_root))
    cfg = C.load(name, "cpu", ["data.val_limit=2"])
    modalities = ("ct",) if cfg["data"]["target"] == "real" else ("mri",)
    train, val, desc = D.build(cfg["data"], modalities)
    assert len(train) > 50 and len(val) == 2
    assert all(s.get("terms") for s in desc["train"])  # the card says under which terms
    for ident in train.ids:
        if "siat500.h5" in ident and cfg["data"]["exclude_test31_neighbours"]:
            n = int(ident.split("#")[1])
            assert any(a <= n <= b for a, b in D.SIAT_SAFE_BLOCKS)


@pytest.mark.data
def test_real_siat500_safe_rows_exist(data_root):
    d = _cfg([{"kind": "siat500", "path": str(data_root / D.SIAT_DEFAULT)}], [{"kind": "synthetic", "n": 1}])
    train, _, _ = D.build(d)
    assert len(train) == 160  # the SOURCE.md count of block-disjoint images
