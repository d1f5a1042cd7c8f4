"""Fuzzed readers, weights files and model cards (issue 14): random bytes under every extension,
truncations and bit flips of good files, absurd headers. Every outcome is a valid array, the one
``UnusableFileError`` (``WeightsError`` for weights), or - napari's reader - None; never another
exception, a hang or a large allocation (the memory limit is lowered to 256 MiB throughout)."""

from __future__ import annotations

import io as _bytes_io
import json

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import tifffile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from napari_unrollrecon._reader import get_reader
from napari_unrollrecon.engine import io, memory
from napari_unrollrecon.methods.learned import WeightsError, load_model

EXTS = (".npy", ".npz", ".png", ".tif", ".mat", ".h5", ".dcm")
FUZZ = settings(max_examples=25, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _low_memory_limit(monkeypatch):
    monkeypatch.setenv(memory.ENV, "256M")


def _good(ext: str) -> bytes:
    """A valid small file of each format, as bytes."""
    a = (np.random.default_rng(0).random((24, 24)) * 200).astype(np.uint8)
    buf = _bytes_io.BytesIO()
    if ext == ".npy":
        np.save(buf, a.astype(np.float32))
    elif ext == ".npz":
        np.savez(buf, image=a)
    elif ext == ".png":
        iio.imwrite(buf, a, extension=".png")
    elif ext == ".tif":
        tifffile.imwrite(buf, a)
    elif ext == ".mat":
        scipy.io.savemat(buf, {"image": a.astype(np.float64)})
    elif ext == ".h5":
        with h5py.File(buf, "w") as f:
            f.create_dataset("image", data=a)
    else:
        return b"\0" * 128 + b"DICM" + bytes(64)
    return buf.getvalue()


def _outcome(path):
    """Read through the engine and the napari reader; anything but the allowed outcomes fails."""
    try:
        loaded = io.read(path)
        assert isinstance(loaded.data, np.ndarray) and loaded.data.size > 0
        assert np.all(np.isfinite(loaded.data))
    except io.UnusableFileError:
        pass
    reader = get_reader(str(path))
    if reader is not None:
        try:
            layers = reader(str(path))
            assert layers and all(isinstance(np.asarray(layer[0]), np.ndarray) for layer in layers)
        except io.UnusableFileError:
            pass


@pytest.mark.parametrize("ext", EXTS)
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(tmp_path, ext, data):
    p = tmp_path / f"f{ext}"
    p.write_bytes(data)
    _outcome(p)


@pytest.mark.parametrize("ext", EXTS[:-1])
@FUZZ
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=6))
@example(cut=1.0, flips=[(0.375, 0)])  # found by hypothesis: h5py's link check raised RuntimeError
@example(cut=1.0, flips=[(1.0, 3)])  # found by hypothesis: a flipped exponent bit gave a float64 beyond float32 (read as Inf)
def test_truncated_and_bit_flipped(tmp_path, ext, cut, flips):
    raw = bytearray(_good(ext))
    for where, bit in flips:
        raw[int(where * (len(raw) - 1))] ^= 1 << bit
    p = tmp_path / f"g{ext}"
    p.write_bytes(bytes(raw[: max(1, int(cut * len(raw)) if cut < 0.95 else len(raw))]))
    _outcome(p)


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2**31, 2), (50_000, 50_000, 3)])
def test_absurd_npy_header(tmp_path, shape):
    p = tmp_path / "bomb.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with open(p, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    with pytest.raises(io.UnusableFileError):
        io.read(p)


def test_absurd_png_header(tmp_path):
    import zlib

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")

    ihdr = (60_000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    p = tmp_path / "bomb.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                  + chunk(b"IEND", b""))
    with pytest.raises(io.UnusableFileError, match="too large|memory limit"):
        io.read(p)


# --------------------------------------------------------------------------- weights and cards
def _build(config):
    from napari_unrollrecon.methods import gdunet

    return gdunet.build_model(config)


@FUZZ
@given(weights=st.binary(max_size=400), card=st.one_of(st.binary(max_size=300), st.dictionaries(
    st.sampled_from(["method", "config", "sha256", "format", "steps"]),
    st.one_of(st.text(max_size=20), st.integers(), st.none(), st.dictionaries(st.text(max_size=8), st.integers(),
                                                                             max_size=3)), max_size=5)))
def test_fuzzed_weights_and_cards(tmp_path, weights, card):
    w = tmp_path / "w.safetensors"
    w.write_bytes(weights)
    c = tmp_path / "w.json"
    c.write_bytes(card if isinstance(card, bytes) else json.dumps(card).encode())
    with pytest.raises(WeightsError):
        load_model(w, "gdunet", _build)


def test_non_finite_weights_refused(tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    from napari_unrollrecon.engine.weights import resolve

    src = resolve("gdunet")
    tensors = load_file(str(src))
    name = next(k for k, v in tensors.items() if v.dtype.kind == "f")
    tensors[name] = np.full_like(tensors[name], np.nan)
    w = tmp_path / "nan.safetensors"
    save_file(tensors, str(w))
    card = json.loads(src.with_suffix(".json").read_text())
    card.pop("sha256", None)
    (tmp_path / "nan.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="NaN|finite"):
        load_model(w, "gdunet", _build)
    shutil.rmtree(tmp_path)
