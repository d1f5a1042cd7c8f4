"""bench on dynamic data: frame files grouped into series, crop/pad, mask unions, tiled k-t masks."""

import imageio.v3 as iio
import numpy as np
import pytest

from napari_unrollrecon.engine import bench, phantoms
from napari_unrollrecon.physics.masks import make_mask, save_mask


@pytest.fixture
def frames(tmp_path):
    cine = (phantoms.cine_phantom(6, 20) * 255).astype(np.uint8)
    for z in range(2):
        for t, frame in enumerate(cine):
            iio.imwrite(tmp_path / f"p9t{t + 1:02d}z{z}.png", frame)
    iio.imwrite(tmp_path / "other.png", cine[0])  # not matched by the group regex
    return tmp_path


def test_frame_files_group_into_series_and_fit(frames):
    series = bench._images(frames, None, dynamic=True, group=r"p9t\d+z(\d)", fit=(16, 24))
    assert len(series) == 2 and series[0].shape == (6, 16, 24)
    assert np.all(series[0][:, :, :2] == 0)  # zero-padded columns, cropped rows
    assert bench._images(frames, 1, dynamic=True, group=r"p9t\d+z(\d)", frames=4)[0].shape == (4, 20, 20)
    with pytest.raises(ValueError, match="matches --group"):
        bench._images(frames, None, dynamic=True, group=r"nothing(\d)")


def test_union_of_mask_files_tiled_over_frames(frames, tmp_path):
    a, b = make_mask("equispaced", (4, 16, 16), 0.25, seed=0), np.zeros((4, 16, 16), np.float32)
    b[:, :, 7:9] = 1  # "ACS" lines
    save_mask(tmp_path / "a.npy", a)
    save_mask(tmp_path / "b.npy", b)
    spec = f"file:{tmp_path / 'a.npy'}|file:{tmp_path / 'b.npy'}"
    mask, desc = bench._mask_for(spec, 0, 0).make((4, 16, 16))
    np.testing.assert_array_equal(mask, np.maximum(a, b))
    assert bench.tile_frames(mask, 6)[4:].tolist() == mask[:2].tolist()
    rows = bench.run_bench(frames, ["zero-filled", "lplus-s"], masks=[spec], ratios=[0], dynamic=True,
                           group=r"p9t\d+z(\d)", fit=(16, 16), mask_file_frames="tile", convention="ddugm",
                           quiet=True, params={"lplus-s": {"iterations": 5}})
    assert [r["method"] for r in rows] == ["zero-filled", "lplus-s"] and rows[0]["n"] == 2
    assert rows[0]["setting"] == "mask file" and " | " in rows[0]["mask"]
    assert rows[1]["psnr_mean"] > rows[0]["psnr_mean"]


@pytest.mark.parametrize("kw, match", [
    ({"methods": ["magic"]}, "unknown method"),
    ({"methods": ["tv"], "params": {"fbp": {"filter": "ramp"}}}, "does not run"),
    ({"methods": ["tv"], "limit": 0}, "--limit must be at least 1"),
    ({"methods": ["fbp"], "views": [0, 60]}, "at least 1"),
])
def test_meaningless_grids_are_refused_before_any_work(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        bench.run_bench(tmp_path / "does-not-exist", quiet=True, **kw)


def test_hggdp_convention_adds_an_hfen_column(tmp_path):
    img = np.abs(phantoms.mri_phantom(32))
    np.save(tmp_path / "a.npy", img)
    rows = bench.run_bench(tmp_path, ["zero-filled"], masks=["radial"], ratios=[30], convention="hggdp", quiet=True)
    assert rows[0]["hfen_mean"] > 0
    assert "HFEN" in bench.markdown(rows)
    plain = bench.run_bench(tmp_path, ["zero-filled"], masks=["radial"], ratios=[30], quiet=True)
    assert plain[0]["hfen_mean"] is None and "HFEN" not in bench.markdown(plain)
