"""CGPD-CSNet: architecture, condition module, training, streaming, resume, weights."""

import json

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import phantoms, problems, registry
from napari_unrollrecon.engine.stream import stream
from napari_unrollrecon.methods import cgpd_csnet as C
from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import StageCache
from napari_unrollrecon.physics.masks import make_mask
from napari_unrollrecon.physics.mri import MRIOperator
from napari_unrollrecon.engine.stream import collect

torch.set_num_threads(1)

TINY = {"p": 4, "k": 2, "n_s": 3, "complex": False, "masks": ["cartesian"], "center_fraction": [0.02, 0.08]}


def tiny_model(seed=0, **over):
    torch.manual_seed(seed)
    return C.build_model({**TINY, **over})


@pytest.fixture(scope="module")
def mri():
    x = np.abs(phantoms.mri_phantom(48))
    return x, problems.mri_from_image(x, make_mask("cartesian", (48, 48), 0.3, seed=2))


_drain = collect  # (updates, result), live changes sent after chosen stages


def _batch(shape=(2, 32, 32), seed=0, config=TINY):
    g = torch.Generator().manual_seed(seed)
    targets = torch.rand(shape, generator=g)
    return C.make_batch(targets, g, config)


# --------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("cplx,hw", [(False, (32, 32)), (False, (31, 33)), (True, (32, 30))])
def test_shapes_and_dtypes(cplx, hw):
    model = tiny_model(complex=cplx)
    b = _batch((2, *hw), config={**TINY, "complex": cplx})
    outs = model(b["y"], b["mask"], b["ratio"])
    assert len(outs) == 3
    for o in outs:
        assert o.shape == (2, *hw) and torch.is_complex(o) == cplx
        assert torch.isfinite(torch.view_as_real(o) if cplx else o).all()
    assert b["target"].shape == (2, *hw) and b["ratio"].shape == (2,)


def _paper_count(p, k, n_s, c=1):
    """Parameters written out from the paper's description (independent of the module code)."""
    conv = lambda cin, cout, ks: cin * cout * ks * ks + cout  # noqa: E731
    restriction = conv(2, 2, 2)
    solver = conv(2, p, 3) + 4 * 2 * conv(p, p, 3) + conv(p, 2, 3)
    prolongation = c * c * 4 + c
    c0 = 2 * c + 1
    dense = sum(conv(c0 + i * p, p, 3) for i in range(k)) + conv(c0 + k * p, c, 1)
    condition = (1 * p + p) + (p * p + p) + (p * 2 * n_s + 2 * n_s)
    return n_s * (restriction + solver + prolongation + dense) + condition


def test_paper_parameter_count():
    model = C.build_model(C.CONFIGS["paper"])
    n = C.parameter_count(model)
    assert n == _paper_count(32, 8, 13) == 4_430_675
    assert abs(n / 4.43e6 - 1) < 0.001  # the paper's "4.43 M"
    assert model.n_stages == 13 and model.middle == 6  # loss on stage 7 = (13 + 1) / 2
    cpu = C.build_model(C.CONFIGS["cpu"])
    assert C.parameter_count(cpu) == _paper_count(16, 4, 7) < n
    assert C.parameter_count(tiny_model(complex=True)) == _paper_count(4, 2, 3, c=2)


def test_pre_relaxation_is_a_gradient_step_in_our_convention():
    stage = tiny_model().stages[0]
    mask = torch.from_numpy(make_mask("radial", (24, 24), 0.3, seed=1))
    x = torch.rand(1, 1, 24, 24)
    truth = torch.rand(24, 24)
    op = MRIOperator(mask)
    y = op.A(truth)
    eta = torch.tensor([0.7])
    expected = x[0, 0] - 0.7 * op.AH(op.A(x[0, 0]) - y).real
    got = stage.pre_relaxation(x, y[None], mask, eta)
    torch.testing.assert_close(got[0, 0], expected, rtol=1e-5, atol=1e-6)


def test_make_batch_simulates_our_convention_with_realised_ratio():
    cfg = {**TINY, "masks": ["cartesian", "radial", "random2d"]}
    g = torch.Generator().manual_seed(3)
    targets = torch.rand(6, 32, 32) * torch.exp(1j * torch.rand(6, 32, 32))  # complex targets
    b = C.make_batch(targets, g, cfg)
    assert not torch.is_complex(b["target"])  # real-image model: magnitudes
    torch.testing.assert_close(b["target"], targets.abs())
    for i in range(6):
        torch.testing.assert_close(b["y"][i], MRIOperator(b["mask"][i]).A(b["target"][i]))
    torch.testing.assert_close(b["ratio"], b["mask"].mean(dim=(-2, -1)))
    assert 0.03 < float(b["ratio"].min()) and float(b["ratio"].max()) < 0.52
    again = C.make_batch(targets, torch.Generator().manual_seed(3), cfg)
    assert torch.equal(again["mask"], b["mask"])  # the rng decides everything
    with pytest.raises(ValueError, match="unknown mask families"):
        C.make_batch(targets, g, {**TINY, "masks": ["spiral"]})


def test_make_batch_with_published_mask_files(data_root):
    from napari_unrollrecon.engine.io import read_mask as load_mask
    from napari_unrollrecon.physics.masks import make_mask

    folder = data_root / "CGPD-CSNet" / "sampling_matrix" / "Cartesian"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    cfg = {**TINY, "masks": [f"file:{folder}/mask_{{pct}}.mat"], "ratios": [0.1, 0.3]}
    b = C.make_batch(torch.rand(4, 256, 256), torch.Generator().manual_seed(0), cfg)
    papers = {r: torch.from_numpy(load_mask(folder / f"mask_{r}.mat")[0]) for r in (10, 30)}
    for m in b["mask"]:
        assert any(torch.equal(m, p) for p in papers.values())  # centred copies of the paper's masks


# --------------------------------------------------------------------------- condition module
def test_ratio_conditioning_and_untrained_ratios():
    model = tiny_model()
    ratios = [0.1, 0.15, 0.25, 0.5]
    eta, beta = model.coefficients(ratios)
    assert eta.shape == beta.shape == (4, 3)
    assert (eta > 0).all() and (beta > 0).all()  # softplus
    assert not torch.allclose(eta[0], eta[3]) and not torch.allclose(beta[0], beta[3])
    b = _batch((1, 32, 32))
    outs = {r: model(b["y"], b["mask"], torch.tensor([r]))[-1] for r in (0.1, 0.15, 0.25, 0.5)}
    assert all(torch.isfinite(o).all() for o in outs.values())
    assert not torch.allclose(outs[0.1], outs[0.5])  # the ratio reaches the reconstruction


def test_gradient_reaches_every_parameter():
    model = tiny_model()
    total, logs = C.loss(model, _batch())
    total.backward()
    assert set(logs) == {"l1_final", "l1_middle"} and np.isclose(total.item(), sum(logs.values()), rtol=1e-5)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_checkpointed_training_gives_the_same_gradients():
    plain, ckpt = tiny_model(), tiny_model(checkpoint=True)
    b = _batch()
    for m in (plain, ckpt):
        m.train()
        C.loss(m, b)[0].backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7, msg=name)


def test_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    cfg = {**TINY, "p": 8, "n_s": 3}
    model = C.build_model(cfg)
    base = torch.from_numpy(np.abs(phantoms.mri_phantom(64, phase=False))).float()
    images = torch.stack([base, base.flip(-1), base.flip(-2), base.T])
    val = C.make_batch(images, torch.Generator().manual_seed(99), cfg)
    with torch.no_grad():
        before = C.loss(model, val)[0].item()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(30):
        batch = C.make_batch(images[step % 4: step % 4 + 1], g, cfg)
        total, _ = C.loss(model, batch)
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():
        after = C.loss(model, val)[0].item()
        zero_filled = 2 * (val["target"] - C.ifft2c(val["y"]).real).abs().mean().item()
    assert after < 0.7 * before, (before, after)
    assert after < zero_filled, (after, zero_filled)  # better than Aᴴy after 30 steps
    assert C.predict(model, val).shape == val["target"].shape


# --------------------------------------------------------------------------- streaming
def test_registered():
    assert registry.get("cgpd-csnet") is C.SPEC
    assert C.SPEC.learned and C.SPEC.resumable and C.SPEC.modalities == ("mri",)
    stages = {p.name: p.stage for p in C.SPEC.params}
    assert stages["eta_scale_1"] == 1 and stages["beta_scale_13"] == 13 and stages["eta_scale"] is None  # 1-based


def test_streams_one_update_per_stage_with_live_changes(mri):
    x, problem = mri
    with C.model_override(tiny_model()):
        ups, res = _drain(stream(C.SPEC, problem, {}, reference=x))
        ups2, res2 = _drain(stream(C.SPEC, problem, {}, reference=x), changes_at={1: {"eta_scale": 0.0}})
        ups3, _ = _drain(stream(C.SPEC, problem, {"condition_ratio": 0.5}))
    assert [u.stage for u in ups] == [1, 2, 3] and all(u.total == 3 for u in ups)
    with C.model_override(tiny_model()):
        gen = C.SPEC.start(problem)
        next(gen)
        assert torch.is_grad_enabled()  # a paused run does not switch autograd off for its caller
        gen.close()
    assert ups[0].image.shape == (48, 48) and ups[0].image.dtype == np.float32
    assert ups[0].extras["correction"].shape == (48, 48) and "psnr" in ups[0].metrics
    u = ups[1]
    assert u.info["condition_ratio"] == pytest.approx(problem.meta["ratio"])
    assert u.info["eta"] == pytest.approx(u.info["eta_learned"]) and u.info["eta"] > 0
    assert res.stages == 3 and np.array_equal(res.image, ups[-1].image)
    # the change sent after stage 1 acts from stage 2 on
    assert ups2[0].info["eta"] == ups[0].info["eta"] and ups2[1].info["eta"] == 0.0
    assert np.array_equal(ups2[0].image, ups[0].image) and not np.allclose(res2.image, res.image)
    # the ratio fed to the condition module changes the learned coefficients
    assert ups3[0].info["condition_ratio"] == 0.5 and ups3[0].info["eta_learned"] != ups[0].info["eta_learned"]


def _final(problem, params=None, cache=None, start=0):
    ups, res = _drain(C.SPEC.start(problem, params or {}, cache=cache, start=start))
    return ups, res.image


def test_resume_from_a_middle_stage(mri):
    _, problem = mri
    with C.model_override(tiny_model(n_s=4)):
        cache = StageCache()
        _, full = _final(problem, cache=cache)
        ups, same = _final(problem, cache=cache, start=3)  # 1-based: recompute stages 3..4
        assert [u.stage for u in ups] == [3, 4]
        assert np.array_equal(same, full)  # nothing changed: the exact same result
        changed = {"eta_scale_3": 2.5}
        assert C.SPEC.params[[p.name for p in C.SPEC.params].index("eta_scale_3")].stage == 3
        ups, resumed = _final(problem, changed, cache=cache, start=3)  # stages 1-2 are reused
        assert not np.allclose(resumed, full)
        assert np.array_equal(resumed, _final(problem, changed)[1])  # = a full run with the change
        with pytest.raises(ValueError, match="cannot resume"):
            _final(problem, cache=StageCache(), start=2)
    with C.model_override(tiny_model(n_s=4, seed=5)):  # another model: the cache does not fit
        with pytest.raises(ValueError, match="cannot resume"):
            _final(problem, cache=cache, start=2)


# --------------------------------------------------------------------------- weights
def test_clear_error_without_weights(mri, monkeypatch):
    monkeypatch.setattr(learned, "bundled", lambda method: [])
    with pytest.raises(ValueError, match="no weights.*train"):
        _final(mri[1])


def test_weights_round_trip(mri, tmp_path):
    model = tiny_model(seed=3)
    path = learned.save_weights(model, tmp_path / "cgpd_tiny.safetensors", {"method": "cgpd-csnet", "config": TINY})
    assert json.loads(path.with_suffix(".json").read_text())["parameters"] == C.parameter_count(model)
    loaded, card = learned.load_model(path, "cgpd-csnet", C.TRAINING.build_model)
    b = _batch((1, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(loaded(b["y"], b["mask"], b["ratio"])[-1], model(b["y"], b["mask"], b["ratio"])[-1])
    _, from_file = _final(mri[1], {"weights": str(path)})
    with C.model_override(model):
        _, in_memory = _final(mri[1])
    np.testing.assert_allclose(from_file, in_memory, rtol=1e-5, atol=1e-6)
    assert C.resolve_model(str(path), "cpu")[0] is C.resolve_model(str(path), "cpu")[0]  # cached per path


def test_the_bundled_model_of_the_masks_family_is_picked(tmp_path, monkeypatch):
    """One model per mask family (the paper's tables): with no weights given, a radial mask runs
    the radial model, a Cartesian mask the Cartesian one, and a family without a model runs the
    default with a note saying so."""
    for name, family, seed in (("a-cart", "cartesian", 1), ("b-radial", "radial", 2)):
        learned.save_weights(tiny_model(seed=seed), tmp_path / f"{name}.safetensors",
                             {"method": "cgpd-csnet", "config": {**TINY, "mask_family": family}})
    monkeypatch.setattr(learned, "BUNDLED_DIR", tmp_path)
    x = np.abs(phantoms.mri_phantom(48))
    for kind, expected, noted in (("radial", "b-radial", False), ("cartesian", "a-cart", False),
                                  ("gaussian", "a-cart", True)):
        problem = problems.mri_from_image(x, make_mask(kind, (48, 48), 0.3, seed=2))
        _, source, note = C.pick_model(problem, "")
        assert source == f"{expected}.safetensors", kind
        assert (note is not None and "random2d" in note) == noted, note
    res = _drain(C.SPEC.start(problem, {}))[1]
    assert "no bundled CGPD-CSNet model was trained for random2d" in res.meta["note"]
    assert C.pick_model(problem, str(tmp_path / "b-radial.safetensors"))[2] is None  # a file given: no pick


@pytest.mark.data
def test_the_bundled_models_cover_the_papers_mask_families(data_root):
    """The shipped models: one per family of the paper's tables, each picked by its masks."""
    from napari_unrollrecon.engine.io import read_mask as load_mask

    x = np.abs(phantoms.mri_phantom(256)).astype(np.float32)
    folder = data_root / "CGPD-CSNet" / "sampling_matrix"
    picked = {}
    for sub, family in (("Cartesian", "cartesian"), ("pseudo-radial", "radial"), ("2D-random", "random2d")):
        problem = problems.mri_from_image(x, load_mask(folder / sub / "mask_10.mat")[0])
        _, source, note = C.pick_model(problem, "")
        picked[family] = source
        assert note is None or "no bundled CGPD-CSNet model" not in note, note
    assert picked == {"cartesian": "cgpd-csnet-cpu13-p20-cart256.safetensors",
                      "radial": "cgpd-csnet-cpu13-radial256.safetensors",
                      "random2d": "cgpd-csnet-cpu13-random256.safetensors"}


def test_card_family_of_older_cards():
    assert C.card_family({"config": {"masks": ["radial"]}}) == "radial"
    assert C.card_family({"config": {"masks": ["file:/x/mask_{pct}.mat"]}}) == "cartesian"
    assert C.card_family({"config": {"masks": ["cartesian"], "mask_family": "random2d"}}) == "random2d"


# --------------------------------------------------------------------------- bundled weights
@pytest.mark.data
def test_bundled_weights_beat_zero_filled_on_brain_test_images(data_root):
    """The shipped CPU model, on 3 of the 50 brain test images with the paper's 20 % and the
    untrained 25 % Cartesian masks, and a generated 5 % mask (below every trained ratio): it
    streams the paper's 13 stages and clearly beats zero-filling."""
    import imageio.v3 as iio

    from napari_unrollrecon.engine import problems as P
    from napari_unrollrecon.engine.metrics import evaluate
    from napari_unrollrecon.engine.stream import run as drain
    from napari_unrollrecon.engine.io import read_mask as load_mask
    from napari_unrollrecon.physics.masks import make_mask

    if not learned.bundled("cgpd-csnet"):
        pytest.skip("no bundled CGPD-CSNet weights")
    folder = data_root / "ISTA-Net-PyTorch/data/BrainImages_test"
    masks = data_root / "CGPD-CSNet/sampling_matrix"
    files = (masks / "Cartesian/mask_20.mat", masks / "Cartesian_untrained/mask_25.mat")
    cases = [(f.name, load_mask(f)[0], 2.0) for f in files]
    cases.append(("generated 5 %", make_mask("cartesian", (256, 256), 0.05, seed=0), 0.25))  # extrapolated
    for what, mask, least in cases:
        gains = []
        for name in ("brain_test_01.png", "brain_test_25.png", "brain_test_50.png"):
            x = iio.imread(folder / name).astype(np.float32)
            prob = P.mri_from_image(x, mask)
            zf = evaluate(drain(registry.get("zero-filled"), prob).image, x, "cgpd")["psnr"]
            res = drain(C.SPEC, prob)
            assert res.stages == 13
            gains.append(evaluate(res.image, x, "cgpd")["psnr"] - zf)
        assert min(gains) > least, (what, gains)


def test_a_real_valued_model_says_it_drops_the_phase():
    """Regression (issue 13.2c): complex data through the real-valued network lost its phase silently."""
    from napari_unrollrecon.engine.stream import run as drain

    yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    disk = ((xx**2 + yy**2) < 0.5).astype(np.float32)
    mask = make_mask("cartesian", (32, 32), 0.4, seed=0)
    with C.model_override(tiny_model()):
        phased = drain(C.SPEC, problems.mri_from_image(disk * np.exp(1j * 2.0 * xx), mask))
        real = drain(C.SPEC, problems.mri_from_image(disk, mask))
    assert "real-valued" in phased.meta.get("note", "") and "phase" in phased.meta["note"]
    assert "note" not in real.meta
