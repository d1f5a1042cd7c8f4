"""GDUNet: tight frame, Lipschitz property, threshold network, both consistency modes, training,
streaming with live ε, resume, weights."""

import json

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import phantoms, problems, registry
from napari_unrollrecon.engine.stream import collect, stream
from napari_unrollrecon.methods import gdunet as G
from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import StageCache
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.masks import make_mask

torch.set_num_threads(1)

TINY = {"stages": 3, "width": 4, "embed": 4, "blocks": 1, "res_blocks": 1, "fusion_kernel": 1, "frame_size": 5,
        "inner_steps": 2, "masks": ["cartesian"], "ratios": [0.2, 0.3], "views": [12, 18]}


def tiny_model(modality="mri", seed=0, **over):
    torch.manual_seed(seed)
    return G.build_model({**TINY, "modality": modality, **over})


@pytest.fixture(scope="module")
def mri():
    x = np.abs(phantoms.mri_phantom(40))
    return x, problems.mri_from_image(x, make_mask("cartesian", (40, 40), 0.3, seed=2))


@pytest.fixture(scope="module")
def ct():
    x = phantoms.ct_phantom(32)
    return x, problems.ct_from_image(x, n_views=16)


def _batch(modality="mri", shape=(2, 24, 24), seed=0, **over):
    g = torch.Generator().manual_seed(seed)
    targets = torch.rand(shape, generator=g)
    return G.make_batch(targets, g, {**TINY, "modality": modality, **over})


# --------------------------------------------------------------------------- tight frame
def test_dct_basis_is_orthonormal_with_a_constant_first_atom():
    b = G.dct_basis(11).reshape(121, 121).double()
    torch.testing.assert_close(b @ b.T, torch.eye(121, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.allclose(b[0], torch.full((121,), 1 / 11, dtype=torch.float64), atol=1e-7)


@torch.no_grad()
def test_frame_is_tight_at_initialisation_and_synthesis_is_the_adjoint():
    torch.manual_seed(0)
    frame = G.TightFrame(11).double()
    x = torch.rand(2, 1, 40, 37, dtype=torch.float64)
    c = frame.analysis(x)
    assert c.shape == (2, 1, 121, 40, 37)
    d = torch.rand_like(c)  # <Wx, d> = <x, Wᵀd>: the synthesis is the exact adjoint
    assert float((c * d).sum()) == pytest.approx(float((x * frame.synthesis(d)).sum()), rel=1e-10)
    r = frame.synthesis(c) - x  # WᵀW = I away from the reflected border (2 × 5 pixels)
    assert float(r[..., 10:-10, 10:-10].abs().max()) < 1e-6  # (the basis is stored in float32)
    assert float(r.abs().max()) > 1e-3  # ... and not exactly at it: reflection duplicates pixels
    circular = G.TightFrame(11, padding="circular").double()
    assert float((circular.synthesis(circular.analysis(x)) - x).abs().max()) < 1e-6  # tight everywhere
    assert float(frame.penalty()) < 1e-9
    frame.weight.add_(0.01 * torch.randn_like(frame.weight))
    assert float(frame.penalty()) > 1e-3  # the loss term sees a frame that drifts


@torch.no_grad()
def test_frame_bounds_and_projection_restore_a_tight_frame():
    torch.manual_seed(1)
    frame = G.TightFrame(11).double()
    lo, hi = frame.bounds()
    assert lo == pytest.approx(1, abs=1e-6) and hi == pytest.approx(1, abs=1e-6)
    frame.weight.add_(0.05 * torch.randn_like(frame.weight))
    lo, hi = frame.bounds()
    assert hi > 1.05  # the bound sees the drift ...
    x = torch.rand(1, 1, 33, 33, dtype=torch.float64)
    circular = G.TightFrame(11, padding="circular").double()
    circular.weight.copy_(frame.weight)  # ... and is the true spectrum of WᵀW (circular padding)
    ratio = float(circular.synthesis(circular.analysis(x)).norm() / x.norm())
    assert lo - 1e-6 <= ratio <= hi + 1e-6  # ‖WᵀWx‖ / ‖x‖ lies between the bounds
    frame.project()
    lo, hi = frame.bounds()
    assert lo == pytest.approx(1, abs=1e-6) and hi == pytest.approx(1, abs=1e-6) and float(frame.penalty()) < 1e-9


def test_training_hook_projects_the_frame_only_when_asked():
    model = tiny_model("mri")
    with torch.no_grad():
        model.frame.weight.mul_(1.3)
    G.after_step(model, {"project_frame": False})
    assert model.frame.bounds()[1] > 1.5
    G.after_step(model, {"project_frame": True})
    assert model.frame.bounds()[1] == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("size", [3, 5])
def test_frame_gradients_match_finite_differences(size):
    """The GEMM/col2im autograd functions against numerical gradients (small frames)."""
    torch.manual_seed(1)
    frame = G.TightFrame(size).double()
    x = torch.rand(1, 1, 12, 9, dtype=torch.float64, requires_grad=True)
    c = torch.rand(1, 1, size * size, 12, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: _with_weight(frame, w).analysis(x), (x, frame.weight.detach().clone().requires_grad_()))
    assert torch.autograd.gradcheck(lambda c, w: _with_weight(frame, w).synthesis(c), (c, frame.weight.detach().clone().requires_grad_()))


def _with_weight(frame, w):
    f = G.TightFrame(frame.size, frame.padding).double()
    del f.weight
    f.weight = w
    return f


def test_soft_threshold_real_and_complex():
    z = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0]).reshape(1, 1, 5, 1, 1)
    eps = torch.full((1, 5, 1, 1), 1.0)
    torch.testing.assert_close(G.soft_threshold(z, eps).flatten(), torch.tensor([-2.0, 0, 0, 0, 1.0]))
    zc = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1, 1)  # |z| = 5, shrunk by 1 along its direction
    torch.testing.assert_close(G.soft_threshold(zc, torch.ones(1, 1, 1, 1)).flatten(), torch.tensor([2.4, 3.2]))


def _power(apply, shape, iterations=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=g, dtype=torch.float64)
    sigma = 0.0
    for _ in range(iterations):
        v = v / v.norm()
        w = apply(v)
        sigma = float(w.detach().norm())
        v = w
    return sigma


@pytest.mark.parametrize("padding", ["reflect", "circular"])
def test_lipschitz_bound_of_the_shrinkage_operator(padding):
    """Lemma: x ↦ Wᵀ soft(Wx, ε) is λmax(WWᵀ)-Lipschitz. Power iteration on its Jacobian (JᵀJ) at
    random points, for a perturbed (trained-like) frame and random positive thresholds, stays below
    λmax(WᵀW) from power iteration on the frame itself."""
    torch.manual_seed(2)
    frame = G.TightFrame(5, padding).double()
    with torch.no_grad():
        frame.weight.mul_(1 + 0.3 * torch.randn_like(frame.weight))  # no longer tight
    shape = (1, 1, 20, 20)
    bound = _power(lambda v: frame.synthesis(frame.analysis(v)), shape)  # ‖W‖² = λmax(WᵀW)
    assert bound > 1.05  # the perturbation matters, so the test is not trivially about a tight frame
    for seed in range(3):
        x0 = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        eps = 0.05 * torch.rand(1, 25, 20, 20, dtype=torch.float64)
        f = lambda x: frame.synthesis(G.soft_threshold(frame.analysis(x), eps))  # noqa: E731

        def jtj(v):
            _, jv = torch.autograd.functional.jvp(f, x0, v)
            return torch.autograd.functional.vjp(f, x0, jv)[1]

        lipschitz_sq = _power(jtj, shape, iterations=40, seed=seed)
        assert np.sqrt(lipschitz_sq) <= bound + 1e-6
        assert np.sqrt(lipschitz_sq) > 0.1 * bound  # the check measures something real


# --------------------------------------------------------------------------- consistency modes
def test_mri_consistency_keeps_measured_kspace_and_fills_the_rest():
    model = tiny_model(complex=True)
    torch.manual_seed(3)
    mask = torch.from_numpy(make_mask("cartesian", (24, 24), 0.3, seed=1))
    truth = torch.randn(1, 24, 24, dtype=torch.complex64)
    y = mask * fft2c(truth)
    xhat = torch.randn(1, 2, 24, 24)
    out = model.mri_consistency(xhat, y, mask, stage=0)
    k_out, k_hat = fft2c(torch.complex(out[:, 0], out[:, 1])), fft2c(torch.complex(xhat[:, 0], xhat[:, 1]))
    beta = G.beta_schedule(1)
    assert beta == pytest.approx(0.00102)
    m = mask.bool().expand_as(k_out)
    torch.testing.assert_close(k_out[m], ((y + beta * k_hat) / (1 + beta))[m], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k_out[~m], k_hat[~m], atol=1e-5, rtol=1e-5)
    real = tiny_model(complex=False).mri_consistency(xhat[:, :1], y, mask, stage=0)  # the paper's |·|
    assert real.shape == (1, 1, 24, 24) and bool((real >= 0).all())


@torch.no_grad()
def test_ct_consistency_uses_the_adjoint_and_lowers_the_data_residual(ct):
    x, problem = ct
    model = tiny_model("ct", inner_steps=4)
    y = problem.y.unsqueeze(0)
    (yn, op), x0, scale = model.initial(y, problem.operator)
    truth = torch.as_tensor(x, dtype=torch.float32)[None, None] / scale.view(-1, 1, 1, 1)
    xhat = truth + 0.05 * torch.randn_like(truth)
    before = float((op.A(xhat) - yn).norm())
    after = float((op.A(model.ct_consistency(xhat, yn, op, stage=0)) - yn).norm())
    assert after < 0.8 * before
    eta1, eta2 = model.step_sizes(7)  # stages past the trained count reuse the last step sizes
    assert float(eta1) == pytest.approx(float(model.step_sizes(TINY["stages"] - 1)[0]))


def test_preconditioned_ct_step_fits_detail_the_adjoint_step_misses(ct):
    """ct_step = "fbp": the same number of inner steps brings x̂ much closer to the truth (the
    adjoint's slow high frequencies are what the ramp filter lifts), and gradients reach η."""
    x, problem = ct
    y = problem.y.unsqueeze(0)
    errors = {}
    for step in ("adjoint", "fbp"):
        model = tiny_model("ct", inner_steps=3, ct_step=step)
        (yn, op), _, scale = model.initial(y, problem.operator)
        truth = torch.as_tensor(x, dtype=torch.float32)[None, None] / scale.view(-1, 1, 1, 1)
        torch.manual_seed(3)
        xhat = truth + 0.1 * torch.randn_like(truth)
        out = model.ct_consistency(xhat, yn, op, stage=0)
        errors[step] = (float((out - truth).norm() / (xhat - truth).norm()),
                        float((op.A(out) - yn).norm() / (op.A(xhat) - yn).norm()))
        if step == "fbp":
            out.sum().backward()
            assert model.eta1.grad is not None and float(model.eta1.grad.abs().sum()) > 0
    assert errors["fbp"][0] < 0.85 * errors["adjoint"][0], errors  # closer to the truth (0.78 vs 0.94)
    assert errors["fbp"][1] < 0.6 * errors["adjoint"][1], errors  # and to the data (0.41 vs 0.80)
    # stable however many steps: FBP∘A has gains up to 6-7 with few views, which an unscaled step
    # turned into growth at every inner step (a training diverged to losses of 1e9)
    model = tiny_model("ct", inner_steps=40, ct_step="fbp")
    (yn, op), _, scale = model.initial(y, problem.operator)
    truth = torch.as_tensor(x, dtype=torch.float32)[None, None] / scale.view(-1, 1, 1, 1)
    xhat = truth + 0.1 * torch.randn_like(truth)
    with torch.no_grad():
        out = model.ct_consistency(xhat, yn, op, stage=0)
    assert float((out - truth).norm() / (xhat - truth).norm()) < 1.0
    with pytest.raises(ValueError, match="ct_step"):
        tiny_model("ct", ct_step="cg")


# --------------------------------------------------------------------------- network and training
@pytest.mark.parametrize("modality,cplx", [("mri", False), ("mri", True), ("ct", False)])
def test_shapes_gradients_and_threshold_range(modality, cplx):
    model = tiny_model(modality, complex=cplx)
    b = _batch(modality, complex=cplx)
    outs = model(b["y"], G._data(b))
    assert len(outs) == 3 and all(o.shape == (2, 24, 24) for o in outs)
    assert torch.is_complex(outs[-1]) == (cplx and modality == "mri")
    loss, logs = G.loss(model, b)
    loss.backward()
    assert set(logs) == {"sse", "frame_penalty"}
    grads = {n: p.grad for n, p in model.named_parameters()}
    for name in ("frame.weight", "lam", "threshold_net.fusion.weight", "threshold_net.blocks.0.attention.temperature"):
        assert grads[name] is not None and float(grads[name].abs().sum()) > 0, name
    if modality == "ct":
        assert float(grads["eta1"].abs().sum()) > 0 and float(grads["eta2"].abs().sum()) > 0
    data, x0, _ = model.initial(b["y"], G._data(b))
    eps, _ = model.thresholds(x0, None)
    assert float(eps.min()) >= G.EPS_RANGE[0] and float(eps.max()) <= G.EPS_RANGE[1]


def test_a_ratio_conditioned_model_starts_as_its_unconditioned_source_and_then_depends_on_the_ratio():
    plain = tiny_model("mri", complex=True)
    conditioned = tiny_model("mri", complex=True, ratio_condition=True)
    missing, unexpected = conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("threshold_net.condition.") for k in missing)
    b = _batch(complex=True)
    with torch.no_grad():
        assert torch.allclose(conditioned(b["y"], G._data(b))[-1], plain(b["y"], G._data(b))[-1])
    loss, _ = G.loss(conditioned, b)
    loss.backward()  # the zero-initialised last layer gets a gradient: training moves it
    assert float(conditioned.threshold_net.condition.mlp[-1].weight.grad.abs().sum()) > 0
    with torch.no_grad():
        conditioned.threshold_net.condition.mlp[-1].weight.normal_(std=0.5)
        data, x0, _ = conditioned.initial(b["y"][:1], b["mask"][:1])
        at = [conditioned.threshold_net(x0.abs().sum(1, keepdim=True).expand(-1, 25, -1, -1), x0, None,
                                        torch.tensor([r]))
              for r in (0.05, 0.3)]
    assert not torch.allclose(at[0], at[1])
    assert G.build_model(dict(conditioned.config)).threshold_net.condition is not None  # card config rebuilds it
    assert tiny_model("ct", ratio_condition=True).threshold_net.condition is None  # MRI only


def test_a_short_training_run_lowers_the_loss():
    for modality in ("mri", "ct"):
        model = tiny_model(modality, lam_init=G.CONFIGS["cpu"]["lam_init"])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        img = torch.as_tensor(np.abs(phantoms.mri_phantom(24)) if modality == "mri" else phantoms.ct_phantom(24))
        targets = torch.stack((img, img.flip(-1))).float() / float(img.abs().max())
        g = torch.Generator().manual_seed(4)
        b = G.make_batch(targets, g, {**TINY, "modality": modality, "ratios": [0.2], "views": [8]})
        first = float(G.loss(model, b)[0])
        for _ in range(30):
            opt.zero_grad()
            G.loss(model, b)[0].backward()
            opt.step()
        assert float(G.loss(model, b)[0]) < 0.85 * first, modality


def test_make_batch_draws_masks_and_views():
    b = _batch("mri", shape=(3, 24, 24))
    assert b["mask"].shape == (3, 24, 24) and all(min(abs(r - 0.2), abs(r - 0.3)) < 1e-6 for r in b["ratio"].tolist())
    c = _batch("ct", shape=(2, 24, 24))
    assert c["views"] in (12, 18) and c["y"].shape == (2, c["views"], c["operator"].n_detectors)
    with pytest.raises(ValueError, match="2D images"):
        G.make_batch(torch.rand(24, 24), torch.Generator(), TINY)
    with pytest.raises(ValueError, match="modality"):
        G.build_model({"modality": "pet"})


# --------------------------------------------------------------------------- streaming
def test_registered():
    assert registry.get("gdunet") is G.SPEC
    assert G.SPEC.learned and G.SPEC.resumable and set(G.SPEC.modalities) == {"mri", "ct"}
    stages = {p.name: p.stage for p in G.SPEC.params}
    assert stages["eps_scale_1"] == 1 and stages["eps_scale"] is None


@pytest.mark.parametrize("which", ["mri", "ct"])
def test_streams_stages_thresholds_and_live_eps(which, mri, ct):
    x, problem = mri if which == "mri" else ct
    with G.STORE.override(tiny_model(which)):
        ups, res = collect(stream(G.SPEC, problem, {}, reference=x))
        ups2, res2 = collect(stream(G.SPEC, problem, {}, reference=x), changes_at={1: {"eps_scale": 0.0}})
        ups5, _ = collect(stream(G.SPEC, problem, {"stages": 5, "threshold_channel": 0}))
    assert [u.stage for u in ups] == [1, 2, 3] and res.stages == 3
    key = "threshold ε[1]"
    assert ups[0].extras[key].shape == x.shape and "psnr" in ups[0].metrics
    assert ups[1].info["eps_mean"] > 0 and ups[1].info["tau_lambda"] == pytest.approx(G.TAU * 0.5)
    assert ("beta" in ups[0].info) == (which == "mri") and ("eta1" in ups[0].info) == (which == "ct")
    assert np.array_equal(ups2[0].image, ups[0].image) and not np.allclose(res2.image, res.image)
    assert ups2[1].info["eps_mean"] == 0.0
    assert len(ups5) == 5 and "threshold ε[0]" in ups5[0].extras


def test_resume_after_a_per_stage_threshold_change(mri):
    _, problem = mri
    with G.STORE.override(tiny_model()):
        cache = StageCache()
        full = collect(G.SPEC.start(problem, {}, cache=cache))[1].image
        ups, same = collect(G.SPEC.start(problem, {}, cache=cache, start=2))
        assert [u.stage for u in ups] == [2, 3] and np.array_equal(same.image, full)
        changed = {"eps_scale_2": 3.0}
        resumed = collect(G.SPEC.start(problem, changed, cache=cache, start=2))[1].image
        assert not np.allclose(resumed, full)
        assert np.array_equal(resumed, collect(G.SPEC.start(problem, changed))[1].image)
    with G.STORE.override(tiny_model(seed=9)):
        with pytest.raises(ValueError, match="cannot resume"):
            collect(G.SPEC.start(problem, {}, cache=cache, start=2))


def test_weights_round_trip_and_modality_check(mri, ct, tmp_path):
    model = tiny_model("ct", seed=3)
    path = learned.save_weights(model, tmp_path / "gd_ct.safetensors",
                                {"method": "gdunet", "config": {**TINY, "modality": "ct"}})
    assert json.loads(path.with_suffix(".json").read_text())["parameters"] == G.parameter_count(model)
    from_file = collect(G.SPEC.start(ct[1], {"weights": str(path)}))[1].image
    with G.STORE.override(model):
        in_memory = collect(G.SPEC.start(ct[1]))[1].image
    np.testing.assert_allclose(from_file, in_memory, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="trained for CT.*MRI"):
        collect(G.SPEC.start(mri[1], {"weights": str(path)}))


def test_clear_error_without_weights(mri, monkeypatch):
    monkeypatch.setattr(learned, "bundled", lambda method: [])
    with pytest.raises(ValueError, match="no weights.*train"):
        collect(G.SPEC.start(mri[1]))


def test_of_several_bundled_mri_models_the_one_trained_nearest_the_sampling_ratio_runs(tmp_path):
    def model(name, **config):
        path = tmp_path / f"{name}.safetensors"
        path.with_suffix(".json").write_text(json.dumps({"method": "gdunet", "config": config}))
        return path

    general = model("general", modality="mri", ratios=[0.05, 0.1, 0.2, 0.3])
    low = model("low", modality="mri", ratios=[0.05])
    ct = model("ct", modality="ct")
    found = [general, low, ct]
    assert G._bundled_for("mri", 0.052)(found) == low  # a specialist before a generalist at one distance
    assert G._bundled_for("mri", 0.1)(found) == general
    assert G._bundled_for("mri", 0.3)(found) == general
    assert G._bundled_for("mri", None)(found) == general  # no ratio: the default (first)
    assert G._bundled_for("ct", None)(found) == ct
    with pytest.raises(ValueError, match="no bundled weights for CT"):
        G._bundled_for("ct", None)([general, low])


# --------------------------------------------------------------------------- bundled weights
@pytest.mark.data
def test_bundled_mri_model_beats_zero_filled_on_siat_test_slices(data_root):
    """The shipped MRI model on 2 of the 31 SIAT test slices (complex) at Cartesian 10 % and 30 %."""
    from napari_unrollrecon.engine import io
    from napari_unrollrecon.engine.metrics import evaluate
    from napari_unrollrecon.engine.stream import run as drain

    mri = [p for p in learned.bundled("gdunet") if learned.read_card(p)["config"].get("modality") == "mri"]
    if not mri:
        pytest.skip("no bundled GDUNet MRI weights")
    trained_stages = learned.read_card(mri[0])["config"]["stages"]
    folder = data_root / "HGGDP/hggdp_rec/test_image31"
    for ratio in (0.1, 0.3):
        mask = make_mask("cartesian", (256, 256), ratio, seed=0)
        gains = []
        for name in ("test_data_01.mat", "test_data_31.mat"):
            x = io.read(folder / name).data
            ref = np.abs(x)
            prob = problems.mri_from_image(x, mask)
            zf = evaluate(drain(registry.get("zero-filled"), prob).image, ref, "gdunet")["psnr"]
            res = drain(G.SPEC, prob)
            assert res.stages == trained_stages  # the card's stage count runs by default
            gains.append(evaluate(res.image, ref, "gdunet")["psnr"] - zf)
        assert min(gains) > 0.5, (ratio, gains)


@pytest.mark.data
def test_bundled_ct_model_beats_fbp_on_aapm_slices(data_root):
    """The shipped CT model on 2 of the 12 AAPM slices (averaged to 256²) at 60 and 180 views."""
    from napari_unrollrecon.engine import io
    from napari_unrollrecon.engine.bench import block_mean
    from napari_unrollrecon.engine.metrics import evaluate
    from napari_unrollrecon.engine.stream import run as drain

    if not [p for p in learned.bundled("gdunet") if learned.read_card(p)["config"].get("modality") == "ct"]:
        pytest.skip("no bundled GDUNet CT weights")
    files = sorted((data_root / "GMSD-AAPM-CT/Test_CT").glob("*.npy"))[:2]
    for views in (60, 180):
        gains = []
        for f in files:
            x = block_mean(io.read(f).data, 2)
            prob = problems.ct_from_image(x, n_views=views)
            fbp = evaluate(drain(registry.get("fbp"), prob).image, x, "gdunet-ct")["psnr"]
            res = drain(G.SPEC, prob)
            assert res.stages == 5
            gains.append(evaluate(res.image, x, "gdunet-ct")["psnr"] - fbp)
        assert min(gains) > 1.0, (views, gains)


def test_bundled_models_that_claim_a_tight_frame_have_one():
    """A shipped model trained with ``project_frame`` must still have frame bounds (1, 1) after
    saving and loading (the paper's Lipschitz argument rests on it); the others are reported."""
    claimed = [p for p in learned.bundled("gdunet") if learned.read_card(p)["config"].get("project_frame")]
    if not claimed:
        pytest.skip("no bundled GDUNet model claims a tight frame")
    for path in claimed:
        model = learned.load_model(path, "gdunet", G.build_model)[0]
        frames = [m for m in model.modules() if hasattr(m, "bounds")]
        assert frames, path.name
        for frame in frames:
            lo, hi = (float(b) for b in frame.bounds())
            assert abs(lo - 1) < 1e-4 and abs(hi - 1) < 1e-4, (path.name, lo, hi)


def test_weaker_note_names_the_setting_where_the_card_measured_a_loss():
    card = {"evaluation": [
        {"data": "brain-50", "family": "cartesian", "results": {
            "10%": {"psnr": 27.19, "best_classical": "tv", "best_classical_psnr": 26.82},
            "20%": {"psnr": 30.88, "best_classical": "tv", "best_classical_psnr": 31.32}}},
        {"data": "AAPM", "results": {"120 views": {"psnr": 41.0, "best_classical": "l1-wavelet",
                                                   "best_classical_psnr": 41.1}}}]}
    note = learned.weaker_note(card, "GDUNet", family="cartesian", ratio=0.205)
    assert note.startswith("measured on brain-50: GDUNet 30.88 dB vs tv 31.32 dB at 20%")
    assert learned.weaker_note(card, "GDUNet", family="cartesian", ratio=0.1) is None  # it wins there
    assert learned.weaker_note(card, "GDUNet", family="radial", ratio=0.2) is None  # another family
    assert "l1-wavelet 41.10 dB at 120 views" in learned.weaker_note(card, "GDUNet", views=118)
    assert learned.weaker_note(card, "GDUNet", views=60) is None
    assert learned.weaker_note({}, "GDUNet", ratio=0.2) is None


def test_the_bundled_mri_model_notes_exactly_where_its_card_measured_a_loss():
    """A run at each Cartesian ratio of the shipped card's tables carries the 'below the classical
    method' note exactly where a table recorded the model below the best classical row of the same
    run (benchmarks/results/{brain50,siat31}_gdunet_cartesian.md; none for the shipped model)."""
    mri = [p for p in learned.bundled("gdunet") if learned.read_card(p)["config"].get("modality") == "mri"]
    if not mri:
        pytest.skip("no bundled GDUNet MRI weights")
    card = learned.read_card(mri[0])
    tables = [e for e in card.get("evaluation", []) if e.get("family") == "cartesian"]
    assert len(tables) == 2, "the card records the brain-50 and SIAT test31 tables"
    losses = {k for e in tables for k, r in e["results"].items() if r["psnr"] < r["best_classical_psnr"]}
    x = np.abs(phantoms.mri_phantom(64)).astype(np.float32)
    for pct in (5, 10, 20, 30):
        problem = problems.mri_from_image(x, make_mask("cartesian", (64, 64), pct / 100, seed=0))
        note = collect(G.SPEC.start(problem, {"stages": 1}))[1].meta.get("note")
        assert ("below the classical method" in (note or "")) == (f"{pct}%" in losses), (pct, note)
