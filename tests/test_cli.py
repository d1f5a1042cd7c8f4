"""The command-line contract: recon, mask, bench, methods; clear errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.io as sio

from napari_unrollrecon.cli import main
from napari_unrollrecon.engine import phantoms
from napari_unrollrecon.engine.metrics import psnr


@pytest.fixture
def image_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    base = np.abs(phantoms.mri_phantom(48)) * 255
    for i in (2, 0, 1):  # written out of order: read back sorted by name
        np.save(d / f"slice_{i}.npy", (base * (1 + 0.1 * i)).astype(np.float32))
    return d, [base * (1 + 0.1 * i) for i in range(3)]


def test_recon_folder_to_npy(image_folder, tmp_path):
    d, truth = image_folder
    out = tmp_path / "rec.npy"
    assert main(["recon", str(d), "-o", str(out), "--method", "tv", "--mask", "radial", "--ratio", "40",
                 "-q"]) == 0
    rec = np.load(out)
    assert rec.shape == (3, 48, 48) and rec.dtype == np.float32
    for r, t in zip(rec, truth):  # same intensity scale as the input, in sorted order
        assert psnr(r, t, 255) > 25
        assert 0.8 < r.max() / t.max() < 1.2


def test_recon_h5_with_reference_and_metadata(image_folder, tmp_path, capsys):
    from napari_unrollrecon.engine.io import read_meta

    d, truth = image_folder
    out = tmp_path / "rec.h5"
    code = main(["recon", str(d / "slice_0.npy"), "-o", str(out), "--method", "zero-filled",
                 "--mask", "cartesian", "--ratio", "0.3", "--reference", str(d / "slice_0.npy")])
    assert code == 0
    assert "PSNR" in capsys.readouterr().err
    meta = read_meta(out)
    assert meta["method"] == "zero-filled"
    assert abs(meta["slices"][0]["ratio"] - 0.3) < 0.01 and meta["slices"][0]["psnr"] > 15


def test_recon_ct_from_image(tmp_path):
    x = phantoms.ct_phantom(64)
    np.save(tmp_path / "ct.npy", x)
    out = tmp_path / "ct_rec.npy"
    assert main(["recon", str(tmp_path / "ct.npy"), "-o", str(out), "--method", "fbp", "--views", "90", "-q"]) == 0
    assert psnr(np.load(out)[0], x, 1.0) > 20


def test_recon_measured_kspace_keeps_its_sampling(tmp_path):
    from napari_unrollrecon.physics.fft import fft2c
    from napari_unrollrecon.physics.masks import make_mask
    import torch

    x = phantoms.mri_phantom(32)
    m = make_mask("random", (32, 32), 0.5, seed=3)
    k = (fft2c(torch.as_tensor(x)).numpy() * m).astype(np.complex64)
    sio.savemat(tmp_path / "k.mat", {"kspace": k})
    out = tmp_path / "k_rec.npy"
    assert main(["recon", str(tmp_path / "k.mat"), "-o", str(out), "--method", "zero-filled",
                 "--input-kind", "kspace", "-q"]) == 0
    from napari_unrollrecon.physics.fft import ifft2c

    np.testing.assert_allclose(np.load(out)[0], ifft2c(torch.as_tensor(k)).abs().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("argv,message", [
    (["--method", "magic"], "unknown method 'magic'"),
    (["--method", "tv", "--param", "lam=-1"], "'lam'=-1.0 is outside its range"),
    (["--method", "tv", "--param", "lam"], "must look like NAME=VALUE"),
    (["--method", "tv", "--ratio", "150"], "must be a fraction in (0, 1]"),
    (["--method", "tv", "--weights", "w.safetensors"], "not a learned method"),
    (["--method", "fbp", "--mask", "radial"], None),  # fbp on an image works (ct); no error expected
])
def test_bad_usage_exits_2_with_message(image_folder, tmp_path, capsys, argv, message):
    d, _ = image_folder
    code = main(["recon", str(d / "slice_0.npy"), "-o", str(tmp_path / "o.npy"), "-q", *argv])
    if message is None:
        assert code == 0
        return
    assert code == 2
    assert message in capsys.readouterr().err


def test_unusable_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((8, 8), np.nan))
    assert main(["recon", str(bad), "-o", str(tmp_path / "o.npy"), "--method", "zero-filled", "-q"]) == 2
    assert "NaN" in capsys.readouterr().err


def test_mask_command(tmp_path, capsys):
    out, png = tmp_path / "m.mat", tmp_path / "m.png"
    assert main(["mask", "--mask", "poisson", "--ratio", "0.2", "--shape", "64", "64", "-o", str(out),
                 "--uncentred", "--preview", str(png)]) == 0
    assert "realised ratio 0.2000 (requested 0.2000)" in capsys.readouterr().out
    m = sio.loadmat(out)["mask_matrix"]
    assert m.shape == (64, 64) and m[0, 0] == 1 and abs(m.mean() - 0.2) < 0.01
    assert png.stat().st_size > 100


def test_bench_writes_markdown_and_csv(image_folder, tmp_path):
    d, _ = image_folder
    prefix = tmp_path / "b"
    assert main(["bench", str(d), "--methods", "zero-filled,tv", "--masks", "cartesian", "--ratios", "20,40",
                 "--param", "tv:iterations=10", "-o", str(prefix), "-q"]) == 0
    md = (tmp_path / "b.md").read_text()
    assert "| zero-filled |" in md and "| tv |" in md and "20%" in md and "40%" in md
    lines = (tmp_path / "b.csv").read_text().strip().splitlines()
    assert lines[0].startswith("method,mask,setting,n,psnr_mean") and len(lines) == 5


def test_methods_and_help():
    r = subprocess.run([sys.executable, "-m", "napari_unrollrecon", "methods"], capture_output=True, text=True)
    assert r.returncode == 0 and "l1-wavelet" in r.stdout and "lam=" in r.stdout
    r = subprocess.run([sys.executable, "-m", "napari_unrollrecon", "recon", "--help"], capture_output=True, text=True)
    for opt in ("--mask", "--ratio", "--seed", "--mask-file", "--views", "--weights", "--reference", "--device", "--noise"):
        assert opt in r.stdout


def test_recon_uses_the_modality_defaults(tmp_path, monkeypatch):
    """A CT run from the CLI gets TV's CT default λ, not the MRI one."""
    from napari_unrollrecon.engine import stream as S

    seen = {}
    real = S.stream

    def spy(spec, problem, params=None, *a, **kw):
        gen = real(spec, problem, params, *a, **kw)
        first = next(gen)
        seen.update(first.params)
        yield first
        return (yield from gen)

    monkeypatch.setattr(S, "stream", spy)
    np.save(tmp_path / "ct.npy", phantoms.ct_phantom(32))
    assert main(["recon", str(tmp_path / "ct.npy"), "-o", str(tmp_path / "o.npy"), "--method", "tv",
                 "--views", "20", "--param", "iterations=3", "-q"]) == 0
    from napari_unrollrecon.engine import registry

    lam = next(p for p in registry.get("tv").params if p.name == "lam")
    assert seen["lam"] == lam.default_for("ct") != lam.default and seen["iterations"] == 3


def test_bench_downsample_averages_blocks_before_simulating(tmp_path):
    from napari_unrollrecon.engine.bench import block_mean

    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(block_mean(x, 2), [[2.5, 4.5], [10.5, 12.5]])
    assert block_mean(np.ones((5, 7)), 2).shape == (2, 3)
    d = tmp_path / "ct"
    d.mkdir()
    np.save(d / "a.npy", np.pad(np.ones((24, 24), np.float32), 4))
    prefix = tmp_path / "c"
    assert main(["bench", str(d), "--methods", "fbp", "--views", "20", "--downsample", "2", "-o", str(prefix), "-q"]) == 0
    assert "| fbp |" in (tmp_path / "c.md").read_text()
    assert main(["bench", str(d), "--methods", "fbp", "--views", "20", "--downsample", "0", "-o", str(prefix), "-q"]) == 2


def test_recon_writes_posterior_samples_and_std_to_h5(tmp_path):
    import h5py

    from napari_unrollrecon.engine import phantoms

    src = tmp_path / "img.npy"
    np.save(src, np.abs(phantoms.mri_phantom(32)).astype(np.float32))
    out = tmp_path / "rec.h5"
    code = main(["recon", str(src), "-o", str(out), "--method", "gaussian-langevin", "--mask", "radial",
                 "--ratio", "0.3", "--param", "samples=3", "--param", "levels=2", "--param", "steps=2", "--quiet"])
    assert code == 0
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (1, 32, 32)
        assert f["samples"].shape == (1, 3, 32, 32) and f["std"].shape == (1, 32, 32)
        assert np.allclose(np.abs(f["samples"][0].mean(0)), f["reconstruction"][0], atol=1e-5)


def test_bench_reports_the_std_error_correlation_of_a_sampler(image_folder, tmp_path):
    d, _ = image_folder
    prefix = tmp_path / "s"
    assert main(["bench", str(d), "--methods", "gaussian-langevin", "--masks", "radial", "--ratios", "30",
                 "--param", "gaussian-langevin:samples=4", "--param", "gaussian-langevin:levels=3",
                 "--param", "gaussian-langevin:steps=5", "-o", str(prefix), "-q"]) == 0
    md = (tmp_path / "s.md").read_text()
    assert "Correlation of the posterior std" in md and "r = " in md
    import csv as _csv

    row = next(_csv.DictReader(open(tmp_path / "s.csv")))
    assert -1 <= float(row["std_err_corr"]) <= 1


def test_std_error_correlation_is_one_for_a_perfect_spread():
    from napari_unrollrecon.engine.bench import std_error_correlation

    ref = np.zeros((8, 8))
    image = np.arange(64.0).reshape(8, 8)
    assert abs(std_error_correlation(2 * image + 1, image, ref) - 1) < 1e-12
    assert np.isnan(std_error_correlation(np.ones((8, 8)), image, ref))


# --------------------------------------------------------------------------- bad input (issue 14)
@pytest.fixture
def small(tmp_path):
    p = tmp_path / "in" / "x.npy"
    p.parent.mkdir()
    np.save(p, np.random.default_rng(0).random((32, 32)).astype(np.float32))
    return p


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("extra, match", [
    (["--method", "fbp", "--views", "0"], "number of views must be at least 1"),
    (["--method", "tv", "--views", "0"], "number of views must be at least 1"),
    (["--method", "tv", "--views", "100000"], "angular Nyquist"),
    (["--method", "tv", "--param", "nonneg=ture"], "must be true or false"),
    (["--method", "zero-filled", "--device", "meta"], "unknown device 'meta'"),
    (["--method", "zero-filled", "--memory-limit", "1K"], "memory limit of 1.0 KiB"),
    (["--method", "zero-filled", "--memory-limit", "lots"], "not a size"),
    (["--method", "zero-filled", "--mask", "bogus"], "invalid choice: 'bogus'"),
])
def test_recon_bad_options_one_line(small, tmp_path, capsys, extra, match):
    assert match in _error_line(capsys, ["recon", str(small), "-o", str(tmp_path / "o.npy"), "-q", *extra])
    assert not (tmp_path / "o.npy").exists()


def test_recon_never_overwrites_or_pollutes_its_input(small, capsys):
    before = small.read_bytes()
    assert "is the input file" in _error_line(capsys, ["recon", str(small), "-o", str(small), "--method", "tv", "-q"])
    assert "into the input folder" in _error_line(
        capsys, ["recon", str(small.parent), "-o", str(small.parent / "o.npy"), "--method", "tv", "-q"])
    assert small.read_bytes() == before and sorted(p.name for p in small.parent.iterdir()) == ["x.npy"]


def test_recon_refuses_a_bad_output_before_running(small, tmp_path, capsys):
    line = _error_line(capsys, ["recon", str(small), "-o", str(tmp_path / "o.xyz"), "--method", "tv"])
    assert "unknown extension '.xyz'" in line


def test_recon_huge_values_get_a_clear_error(tmp_path, capsys):
    p = tmp_path / "huge.npy"
    np.save(p, np.full((16, 16), 3e38, np.float32))
    assert "values reach 3e+38" in _error_line(capsys, ["recon", str(p), "-o", str(tmp_path / "o.npy"),
                                                       "--method", "zero-filled", "-q"])


def test_mask_preview_must_be_png_and_size_bombs_refused(tmp_path, capsys):
    assert "give a .png name" in _error_line(capsys, ["mask", "--preview", str(tmp_path / "p.txt")])
    assert "needs about" in _error_line(capsys, ["mask", "--shape", "100000", "100000"])


def test_bench_constant_reference_and_bad_ratios(tmp_path, capsys):
    d = tmp_path / "c"
    d.mkdir()
    np.save(d / "c.npy", np.ones((16, 16), np.float32))
    assert "reference is constant" in _error_line(capsys, ["bench", str(d), "--methods", "zero-filled", "--ratios",
                                                           "20", "-q", "-o", str(tmp_path / "b")])
    assert "--ratios takes comma-separated numbers" in _error_line(
        capsys, ["bench", str(d), "--ratios", "abc", "-q", "-o", str(tmp_path / "b")])


def test_debug_shows_the_traceback(small, tmp_path):
    with pytest.raises(ValueError, match="number of views"):
        main(["recon", str(small), "-o", str(tmp_path / "o.npy"), "--method", "fbp", "--views", "0", "--debug"])


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_recon_trajectory_end_to_end(tmp_path, capsys, ext):
    from napari_unrollrecon.engine import export

    x = phantoms.ct_phantom(32)
    np.save(tmp_path / "ct.npy", x)
    traj = tmp_path / f"run{ext}"
    assert main(["recon", str(tmp_path / "ct.npy"), "-o", str(tmp_path / "rec.npy"), "--method", "tv",
                 "--views", "20", "--param", "iterations=6", "--reference", str(tmp_path / "ct.npy"),
                 "--trajectory", str(traj), "--fps", "8"]) == 0
    assert f"wrote {traj}: 6 stages" in capsys.readouterr().err
    frames = export.read_frames(traj)
    assert len(frames) == 6 and frames.shape[-1] == 3
    assert (frames[0, :14] > 200).any()  # the caption


@pytest.mark.parametrize("name,message", [("out/run.avi", "use a .gif or .mp4 file name"),
                                           ("in/run.gif", "would be written into the input folder")])
def test_recon_trajectory_bad_path_one_line(tmp_path, capsys, name, message):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "ct.npy", phantoms.ct_phantom(32))
    code = main(["recon", str(tmp_path / "in"), "-o", str(tmp_path / "rec.npy"), "--method", "fbp",
                 "--trajectory", str(tmp_path / name), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "rec.npy").exists()  # refused before running
