"""Disk cache of the CT projector's matrices: round trip, damaged files, geometry keys, notices."""

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine.notices import Notice, with_notices
from napari_unrollrecon.physics import ct, ct_cache
from napari_unrollrecon.physics.ct import RadonOperator
from napari_unrollrecon.physics.notices import announce, listening


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder; every build is saved (no minimum time); no in-memory matrices."""
    monkeypatch.setenv(ct_cache.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(ct_cache, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(ct, "_SPARSE_CACHE", ct._SPARSE_CACHE.__class__())
    return tmp_path


def _fresh(size=40, **kw):
    ct._SPARSE_CACHE.clear()
    return RadonOperator(size, backend="sparse", **kw)


def _csr_parts(mats):
    return [t for pair in (mats.pair, mats.alone) for m in pair or ()
            for t in (m.crow_indices(), m.col_indices(), m.values())]


@pytest.mark.parametrize("angles", [None, [0.0, 13.0, 90.0, 103.0, 47.5]])  # paired only; paired + single
def test_round_trip_equals_a_fresh_build(cache, angles):
    built = _fresh(n_views=12 if angles is None else None, angles=angles)._matrices(torch.float32)
    assert len(list(cache.glob("radon-*.safetensors"))) == 1
    loaded = _fresh(n_views=12 if angles is None else None, angles=angles)._matrices(torch.float32)
    assert loaded is not built
    for a, b in zip(_csr_parts(built), _csr_parts(loaded), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    op = _fresh(n_views=12 if angles is None else None, angles=angles)
    x = torch.rand(40, 40)
    y = op.A(x)
    assert torch.allclose(op.AH(y), RadonOperator(40, angles=op.angles, backend="grid").AH(y), rtol=1e-4, atol=1e-4)


def _damage(path, how):
    raw = bytearray(path.read_bytes())
    if how == "truncated":
        raw = raw[: len(raw) // 2]
    elif how == "flipped":
        raw[-100] ^= 0xFF  # a value or index byte near the end
    elif how == "garbage":
        raw = bytearray(b"not a safetensors file at all")
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage"])
def test_damaged_file_is_rebuilt(cache, how):
    reference = _csr_parts(_fresh(n_views=10)._matrices(torch.float32))
    (path,) = cache.glob("radon-*.safetensors")
    _damage(path, how)
    with pytest.warns(UserWarning, match="unusable"):
        rebuilt = _fresh(n_views=10)._matrices(torch.float32)
    for a, b in zip(reference, _csr_parts(rebuilt), strict=True):
        assert torch.equal(a, b)
    assert ct_cache.load(path.name) is not None  # the rebuild replaced the bad file


def test_key_differs_by_geometry():
    base = dict(image_size=64, n_detectors=91, n_samples=91, angles=np.arange(60) * 3.0, dtype=torch.float32)
    key = ct_cache.geometry_key(**base)
    for change in (dict(image_size=65), dict(n_detectors=93), dict(n_samples=92), dict(dtype=torch.float64),
                   dict(angles=np.arange(60) * 3.0 + 1e-7), dict(angles=np.arange(59) * 3.0)):
        assert ct_cache.geometry_key(**{**base, **change}) != key, change
    assert ct_cache.geometry_key(**base) == key


def test_cache_off_and_eviction(cache, monkeypatch):
    monkeypatch.setenv(ct_cache.ENV_DIR, "off")
    _fresh(n_views=8)._matrices(torch.float32)
    assert not list(cache.iterdir())
    monkeypatch.setenv(ct_cache.ENV_DIR, str(cache))
    monkeypatch.setenv(ct_cache.ENV_MB, "0")  # nothing but the newest fits
    _fresh(n_views=8)._matrices(torch.float32)
    _fresh(n_views=9)._matrices(torch.float32)
    assert [p.name.split("-")[2] for p in cache.glob("radon-*")] == ["9v"]


def test_build_is_announced_and_relayed_as_notices(cache, monkeypatch):
    monkeypatch.setattr(ct, "_ANNOUNCE_BYTES", 0)
    heard = []
    with listening(heard.append):
        _fresh(n_views=6)._matrices(torch.float32)
        _fresh(n_views=6)._matrices(torch.float32)
    assert heard == ["building the CT projector for 6 views at 40² (first use; kept for next time)…",
                     "loading the CT projector for 6 views at 40² from the cache…"]

    def prepare():
        announce("building something")
        return 42

    gen, items = with_notices(prepare), []
    with pytest.raises(StopIteration) as stop:
        while True:
            items.append(next(gen))
    assert items == [Notice("building something")] and stop.value.value == 42


def test_with_notices_reraises_and_says_when_slow():
    import time

    def slow():
        time.sleep(0.3)
        raise ValueError("bad input")

    gen = with_notices(slow, patience=0.1)
    assert "preparing the problem" in next(gen).text
    with pytest.raises(ValueError, match="bad input"):
        next(gen)


def test_fbp_of_the_same_sinogram_is_reused_but_never_stale():
    op = RadonOperator(32, n_views=10, backend="grid")
    y = op.A(torch.rand(32, 32))
    first = op.fbp(y)
    again = op.fbp(y)
    assert torch.equal(first, again) and again is not first
    again += 1  # a caller's in-place change does not reach the memo
    assert torch.equal(op.fbp(y), first)
    y.mul_(2)  # the sinogram changed in place: recomputed
    assert torch.allclose(op.fbp(y), 2 * first, atol=1e-5)
    assert not torch.equal(op.fbp(y, filter="hann"), op.fbp(y))
