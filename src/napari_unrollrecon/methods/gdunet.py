"""GDUNet: tight-frame gradient network with a threshold-generating sub-network, unrolled into a
convergent algorithm for CS-MRI and sparse-view CT (Shi, Huang, Xu, Su, "Explicitly provable
gradient network for unrolled medical image reconstruction algorithms").

Paper → code::

    gradient network   G(x) = x − Wᵀ soft(Wx, ε)                    GDUNet.gradient_step
      W  tight frame: 121 analysis filters 11×11 (2D DCT basis, first atom constant), reflection
         padding; Wᵀ its exact adjoint, so WᵀW = I in the interior at initialisation   TightFrame
      ε  threshold-generating sub-network, per frame channel and pixel, in [1e-5, 10]  ThresholdNet
         (a) local: residual blocks on |Wx|  (b) non-local / inter-stage: channel cross-attention
         between the current and the previous stage image  (c) squeeze-excitation + conv fusion
    stage update       x̂ = x − τλ·G(x), τ = 0.09 fixed, λ learned (init 0.5)
    MRI consistency    k = M(y + β_i F x̂)/(1 + β_i) + (1 − M) F x̂,  β_i = 0.001·1.02^i,  x = F⁻¹k
                       (the paper takes |F⁻¹k|; ``complex=True`` keeps the phase)
    CT consistency     x ← x − 2η₁,i Aᵀ(Ax − y) − 2η₂,i (x − x̂), ``inner_steps`` times per stage
                       (config ``ct_step = "fbp"``: the authors' ramp-filtered back-projection P in
                       place of Aᵀ, a preconditioned gradient step),
                       with the Radon adjoint (the authors' code used FBP in its place)
    loss               ½‖x_final − x*‖² + 0.001·‖BBᵀ − I‖²_F (B: the 121 filters as rows)

Like the authors' code, the frame, the threshold network and λ are shared by all stages, so a
trained model can also be run for more or fewer stages; β_i and the CT step sizes are per stage.
Scaling: W = conv/11 and Wᵀ = transposed conv/11 (the authors put 1/121 on Wᵀ alone), which makes
Wᵀ the true adjoint of W; thresholds are therefore 1/11 of theirs. Inputs are divided by the peak
of the initial image (|Aᴴy| or FBP) inside the network and outputs multiplied back.
``docs/methods/gdunet.md`` lists every deviation from the paper and the authors' code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import Param, UpdateMaker, resume_point, scale_param
from napari_unrollrecon.physics.fft import fft2c
from napari_unrollrecon.physics.mri import as_operator
from napari_unrollrecon.physics.masks import mask_family
from napari_unrollrecon.priors.blocks import ResBlock, parameter_count  # noqa: F401 - shared blocks
from napari_unrollrecon.priors.channels import as_complex

NAME = "gdunet"
TAU = 0.09
EPS_RANGE = (1e-5, 10.0)
FRAME_PENALTY = 1e-3
#: Per-stage ε multipliers are declared for this many stages (authors: 7 MRI, 5 CT).
MAX_STAGE_PARAMS = 10

# --------------------------------------------------------------------------- configurations
_COMMON = {"frame_size": 11, "padding": "reflect", "complex": False, "inner_steps": 3}
CONFIGS = {
    # Authors: residual blocks on the 121 coefficients, 31-channel embeddings, 3 transformer blocks.
    "paper": {**_COMMON, "width": 121, "embed": 31, "blocks": 3, "res_blocks": 2, "fusion_kernel": 3,
              "lr": 2e-4, "batch_size": 1},
    # Reduced for CPU training: a 1×1 projection 121→16 before the residual blocks, one
    # cross-attention block, 1×1 fusion; λ starts at τλ = 0.5, since a run of a few thousand Adam
    # steps cannot grow it from the paper's 0.5 (τλ = 0.045) the way 200 000 steps do.
    "cpu": {**_COMMON, "width": 16, "embed": 8, "blocks": 1, "res_blocks": 2, "fusion_kernel": 1,
            "lam_init": 0.5 / TAU, "lr": 5e-4, "batch_size": 1, "patch": 96},
}


def _arch(config: dict) -> dict:
    """Architecture keys with their defaults; rejects nonsense early."""
    modality = config.get("modality", "mri")
    if modality not in ("mri", "ct"):
        raise ValueError(f"GDUNet config 'modality' must be 'mri' or 'ct', got {modality!r}")
    arch = {
        "modality": modality,
        "stages": int(config.get("stages", 7 if modality == "mri" else 5)),
        "frame_size": int(config.get("frame_size", 11)),
        "padding": str(config.get("padding", "reflect")),
        "width": int(config.get("width", 121)),
        "embed": int(config.get("embed", 31)),
        "blocks": int(config.get("blocks", 3)),
        "res_blocks": int(config.get("res_blocks", 2)),
        "fusion_kernel": int(config.get("fusion_kernel", 3)),
        "complex": bool(config.get("complex", False)) and modality == "mri",
        "inner_steps": int(config.get("inner_steps", 3)),
        "lam_init": float(config.get("lam_init", 0.5)),
        "threshold_lowpass": bool(config.get("threshold_lowpass", True)),
        "ct_step": str(config.get("ct_step", "adjoint")),
        "ratio_condition": bool(config.get("ratio_condition", False)) and modality == "mri",
    }
    if arch["padding"] not in ("reflect", "circular"):
        raise ValueError(f"GDUNet frame padding must be 'reflect' or 'circular', got {arch['padding']!r}")
    if arch["ct_step"] not in ("adjoint", "fbp"):
        raise ValueError(f"GDUNet ct_step must be 'adjoint' or 'fbp', got {arch['ct_step']!r}")
    if arch["frame_size"] < 1 or arch["frame_size"] % 2 == 0:
        raise ValueError(f"GDUNet frame_size must be odd and positive, got {arch['frame_size']}")
    small = [k for k in ("stages", "width", "embed", "inner_steps") if arch[k] < 1]
    if small:
        raise ValueError(f"GDUNet config needs {', '.join(small)} >= 1")
    return arch


# --------------------------------------------------------------------------- tight frame
def dct_basis(n: int = 11) -> torch.Tensor:
    """The n² atoms of the orthonormal 2D DCT-II basis as (n², 1, n, n) filters; atom 0 is constant."""
    k = np.arange(n)
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    c[0] /= np.sqrt(2.0)
    atoms = np.einsum("ui,vj->uvij", c, c).reshape(n * n, 1, n, n)
    return torch.from_numpy(atoms.astype(np.float32))


def _pad_adjoint(p: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """Adjoint of ``F.pad(x, (pad,)*4, mode)`` on the last two axes: fold the margins back."""
    for axis in (-2, -1):
        n = p.shape[axis] - 2 * pad
        core = p.narrow(axis, pad, n).clone()
        left, right = p.narrow(axis, 0, pad), p.narrow(axis, pad + n, pad)
        if mode == "reflect":  # padded[i] = x[pad - i], padded[pad + n + j] = x[n - 2 - j]
            core.narrow(axis, 1, pad).add_(left.flip(axis))
            core.narrow(axis, n - 1 - pad, pad).add_(right.flip(axis))
        else:  # circular: padded[i] = x[n - pad + i], padded[pad + n + j] = x[j]
            core.narrow(axis, n - pad, pad).add_(left)
            core.narrow(axis, 0, pad).add_(right)
        p = core
    return p


def _scatter(coeffs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """conv_transpose2d(coeffs, weight) as one GEMM and a col2im: ~8× faster than the transposed
    convolution of oneDNN on a CPU for 121 → 1 channels of 11×11."""
    n, k, h, w = coeffs.shape
    size = weight.shape[-1]
    cols = weight.reshape(k, -1).T @ coeffs.reshape(n, k, h * w)
    return F.fold(cols, (h + size - 1, w + size - 1), size)


class _Correlate(torch.autograd.Function):
    """Analysis conv2d(x, w) (1 → K channels); its input gradient through :func:`_scatter`."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        gx = _scatter(g, weight) if ctx.needs_input_grad[0] else None
        gw = torch.nn.grad.conv2d_weight(x, weight.shape, g) if ctx.needs_input_grad[1] else None
        return gx, gw


class _Scatter(torch.autograd.Function):
    """Synthesis conv_transpose2d(c, w) (K → 1 channels); the adjoint of :class:`_Correlate`."""

    @staticmethod
    def forward(ctx, coeffs, weight):
        ctx.save_for_backward(coeffs, weight)
        return _scatter(coeffs, weight)

    @staticmethod
    def backward(ctx, g):
        coeffs, weight = ctx.saved_tensors
        gc = F.conv2d(g, weight) if ctx.needs_input_grad[0] else None
        gw = torch.nn.grad.conv2d_weight(g, weight.shape, coeffs) if ctx.needs_input_grad[1] else None
        return gc, gw


class TightFrame(nn.Module):
    """W: K = size² analysis filters, applied per image channel; Wᵀ: its exact adjoint."""

    def __init__(self, size: int = 11, padding: str = "reflect"):
        super().__init__()
        self.size, self.pad, self.padding = size, size // 2, padding
        self.weight = nn.Parameter(dct_basis(size))

    @property
    def n_filters(self) -> int:
        return self.weight.shape[0]

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c, H, W) → (B, c, K, H, W)."""
        b, c, h, w = x.shape
        if min(h, w) <= self.pad:
            raise ValueError(f"GDUNet needs images larger than {self.pad} pixels per side, got {h}×{w}")
        flat = F.pad(x.reshape(b * c, 1, h, w), (self.pad,) * 4, mode=self.padding)
        return _Correlate.apply(flat, self.weight).div(self.size).reshape(b, c, -1, h, w)

    def synthesis(self, coeffs: torch.Tensor) -> torch.Tensor:
        """(B, c, K, H, W) → (B, c, H, W)."""
        b, c, k, h, w = coeffs.shape
        full = _Scatter.apply(coeffs.reshape(b * c, k, h, w), self.weight).div(self.size)
        return _pad_adjoint(full, self.pad, self.padding).reshape(b, c, h, w)

    @torch.no_grad()
    def project(self) -> None:
        """Snap the filters to the nearest orthonormal basis (polar factor UVᵀ of B = UΣVᵀ): the
        frame is then exactly tight, WᵀW = I (circular padding), so x ↦ Wᵀsoft(Wx, ε) is 1-Lipschitz."""
        b = self.weight.reshape(self.n_filters, -1).double()
        u, _, vh = torch.linalg.svd(b)
        self.weight.copy_((u @ vh).reshape(self.weight.shape).to(self.weight.dtype))

    @torch.no_grad()
    def bounds(self, grid: int = 64) -> tuple[float, float]:
        """Frame bounds (λmin, λmax) of WᵀW with circular padding: the extremes over frequencies ω
        of Σ_k |b̂_k(ω)|² / size² (WᵀW is then a convolution), on a ``grid``² frequency grid."""
        spec = torch.fft.fft2(self.weight.double().squeeze(1), s=(grid, grid)).abs().pow(2).sum(0) / self.size**2
        return float(spec.min()), float(spec.max())

    def penalty(self) -> torch.Tensor:
        """‖BBᵀ − I‖²_F: zero exactly when the filters stay an orthonormal basis (tight frame)."""
        b = self.weight.reshape(self.n_filters, -1)
        return (b @ b.T - torch.eye(self.n_filters, dtype=b.dtype, device=b.device)).pow(2).sum()


def soft_threshold(z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Soft thresholding of frame coefficients (B, c, K, H, W) with ε (B, K, H, W).

    c = 1: real, sign(z)·max(|z| − ε, 0); c = 2: complex (Re, Im) coefficients shrunk in magnitude.
    Both are the prox of ε|·|, so 1-Lipschitz.
    """
    mag = z.pow(2).sum(dim=1, keepdim=True).add(1e-24).sqrt()
    return z * F.relu(1 - eps.unsqueeze(1) / mag)


# --------------------------------------------------------------------------- threshold network
class LayerNorm2d(nn.Module):
    """LayerNorm over channels at every pixel (Restormer's 'WithBias' norm)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelCrossAttention(nn.Module):
    """Queries from the current image, keys/values from the previous stage image; attention is a
    c×c map between channels (L2-normalised q, k, learned temperature), cost linear in pixels."""

    def __init__(self, c: int):
        super().__init__()
        self.q = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c))
        self.kv = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c))
        self.temperature = nn.Parameter(torch.ones(1))
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        q = F.normalize(self.q(x).flatten(2), dim=-1)
        k, v = self.kv(context).flatten(2).chunk(2, dim=1)
        attn = torch.softmax(q @ F.normalize(k, dim=-1).transpose(1, 2) * self.temperature, dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class CrossBlock(nn.Module):
    """Transformer block: cross-attention then a gated-free FFN (1×1, depthwise 3×3, GELU, 1×1)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm_x, self.norm_ctx, self.norm_ffn = LayerNorm2d(c), LayerNorm2d(c), LayerNorm2d(c)
        self.attention = ChannelCrossAttention(c)
        self.ffn = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c),
                                 nn.GELU(), nn.Conv2d(2 * c, c, 1))

    def forward(self, x, context):
        x = x + self.attention(self.norm_x(x), self.norm_ctx(context))
        return x + self.ffn(self.norm_ffn(x))


class SqueezeExcitation(nn.Module):
    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, max(1, c // reduction), 1), nn.Conv2d(max(1, c // reduction), c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(-2, -1), keepdim=True)))))


class ThresholdNet(nn.Module):
    """ε = clamp(fusion([local(|Wx|), non-local(x, x_prev)]), 1e-5, 10), per frame channel and pixel."""

    def __init__(self, n_filters: int, channels: int, width: int, embed: int, blocks: int, res_blocks: int,
                 fusion_kernel: int, ratio_condition: bool = False):
        super().__init__()
        self.embed = embed
        # the paper's blocks work on all K coefficients; a narrower width enters through a 1×1 projection
        self.local_in = nn.Identity() if width == n_filters else nn.Conv2d(n_filters, width, 1)
        self.local = nn.Sequential(*[ResBlock(width) for _ in range(res_blocks)])
        self.embed_current = nn.Conv2d(channels, embed, 3, padding=1)
        self.embed_previous = nn.Conv2d(channels, embed, 3, padding=1)
        self.blocks = nn.ModuleList(CrossBlock(embed) for _ in range(blocks))
        self.excitation = SqueezeExcitation(width + embed)
        self.fusion = nn.Conv2d(width + embed, n_filters, fusion_kernel, padding=fusion_kernel // 2)
        nn.init.normal_(self.fusion.weight, std=1e-3)  # start near a uniform, small threshold
        nn.init.constant_(self.fusion.bias, 0.01)
        self.condition = ConditionModule(width + embed) if ratio_condition else None

    def forward(self, magnitudes, x, previous, ratio=None):
        """``magnitudes`` |Wx| (B, K, H, W); ``x``, ``previous`` images (B, c, H, W) or previous None
        (stage 1: only the local branch, the non-local features are zero); ``ratio`` (B,) the
        sampling ratio, used by a ratio-conditioned network only."""
        local = self.local(self.local_in(magnitudes))
        if previous is None:
            nonlocal_ = local.new_zeros(local.shape[0], self.embed, *local.shape[-2:])
        else:
            nonlocal_, context = self.embed_current(x), self.embed_previous(previous)
            for block in self.blocks:
                nonlocal_ = block(nonlocal_, context)
        features = torch.cat((local, nonlocal_), dim=1)
        if self.condition is not None:
            if ratio is None:
                raise ValueError("this GDUNet model is conditioned on the sampling ratio; pass the ratio")
            features = self.condition(features, ratio)
        return self.fusion(self.excitation(features)).clamp(*EPS_RANGE)


class ConditionModule(nn.Module):
    """Feature-wise modulation by the sampling ratio r: f ← f·(1 + γ(log r)) + β(log r).

    The authors train one GDUNet per mask and ratio; one model for 5-30 % shares every weight
    across ratios. This small MLP lets the threshold features depend on r (as FiLM, Perez et al.
    2018). Its last layer starts at zero, so a conditioned model starts as the model it is
    fine-tuned from."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features, ratio):
        r = torch.as_tensor(ratio, dtype=features.dtype, device=features.device).reshape(-1, 1)
        gamma, beta = self.mlp(r.clamp_min(1e-3).log()).expand(features.shape[0], -1).chunk(2, dim=1)
        return features * (1 + gamma[..., None, None]) + beta[..., None, None]


# --------------------------------------------------------------------------- the network
def _inverse_softplus(v: float) -> float:
    return v + math.log(-math.expm1(-v))


def beta_schedule(stage: int) -> float:
    """β_i = 0.001·1.02^i for the 1-based stage i (weight of the estimate at measured k-space points)."""
    return 0.001 * 1.02**stage


class GDUNet(nn.Module):
    """The unrolled network. MRI inputs: centred k-space ``y`` (B, H, W) complex and centred mask;
    CT inputs: sinograms ``y`` (B, V, D) and a RadonOperator. Images are in data units outside."""

    def __init__(self, modality: str = "mri", stages: int = 7, frame_size: int = 11, padding: str = "reflect",
                 width: int = 121, embed: int = 31, blocks: int = 3, res_blocks: int = 2, fusion_kernel: int = 3,
                 complex: bool = False, inner_steps: int = 3, lam_init: float = 0.5,
                 threshold_lowpass: bool = True, ct_step: str = "adjoint", ratio_condition: bool = False):
        super().__init__()
        self.config = _arch(dict(locals()))
        self.modality, self.n_stages, self.inner_steps, self.ct_step = modality, stages, inner_steps, ct_step
        self.channels = 2 if complex else 1
        self.frame = TightFrame(frame_size, padding)
        self.threshold_net = ThresholdNet(self.frame.n_filters, self.channels, width, embed, blocks, res_blocks,
                                          fusion_kernel, ratio_condition)
        self.lam = nn.Parameter(torch.tensor(float(lam_init)))
        # threshold_lowpass=False leaves the constant atom (the local mean) unshrunk, as frame-based
        # regularisation usually does (Cai, Osher & Shen); the paper thresholds every channel.
        keep = torch.ones(1, self.frame.n_filters, 1, 1)
        if not threshold_lowpass:
            keep[:, 0] = 0.0
        self.register_buffer("threshold_gate", keep, persistent=False)
        # CT step sizes per stage, positive through softplus: 2η₁‖A‖² = 1 (‖A‖ normalised to 1), η₂ = 0.05
        n_eta = stages if modality == "ct" else 0
        # with P = FBP ≈ A⁻¹ the step is a fraction of the FBP correction: start at half of it
        self.eta1 = nn.Parameter(torch.full((n_eta,), _inverse_softplus(0.5 if ct_step == "adjoint" else 0.45)))
        self.eta2 = nn.Parameter(torch.full((n_eta,), _inverse_softplus(0.05)))

    # ------------------------------------------------------------------ pieces
    def thresholds(self, x, previous, ratio=None):
        """ε (B, K, H, W) for the current image and the previous stage's (None at stage 1)."""
        coeffs = self.frame.analysis(x)
        magnitude = coeffs.pow(2).sum(dim=1).add(1e-12).sqrt()  # finite gradient where Wx = 0 (air in CT)
        return self.threshold_net(magnitude, x, previous, ratio), coeffs

    def gradient_step(self, x, eps, coeffs=None, tau_lam=None):
        """x̂ = x − τλ·G(x) = (1 − τλ)x + τλ·Wᵀ soft(Wx, ε)."""
        coeffs = self.frame.analysis(x) if coeffs is None else coeffs
        tl = TAU * self.lam if tau_lam is None else tau_lam
        return x - tl * (x - self.frame.synthesis(soft_threshold(coeffs, eps)))

    def step_sizes(self, stage: int):
        """Learned CT (η₁, η₂) of the 0-based stage; stages past the trained count reuse the last."""
        i = min(stage, self.eta1.numel() - 1)
        return F.softplus(self.eta1[i]), F.softplus(self.eta2[i])

    def mri_consistency(self, xhat, y, op, stage: int):
        """Weighted k-space consistency with β of the 0-based ``stage``; |·| unless complex."""
        # M(y + βFx̂)/(1 + β) + (1 − M)Fx̂ is the operator's weighted consistency with weight β
        z = as_operator(op).data_consistency(as_complex(xhat), y, weight=beta_schedule(stage + 1))
        return torch.stack((z.real, z.imag), dim=1) if self.channels == 2 else z.abs().unsqueeze(1)

    def ct_consistency(self, xhat, y, op, stage: int):
        """``inner_steps`` gradient steps on ½‖Ax − y‖² + η₂/η₁·½‖x − x̂‖², from x̂, with Aᵀ (op
        normalised) or, with ``ct_step = "fbp"``, its ramp-filtered back-projection."""
        eta1, eta2 = self.step_sizes(stage)
        back = op.AH if self.ct_step == "adjoint" else op.fbp
        x = xhat
        for _ in range(self.inner_steps):
            x = x - 2 * eta1 * back(op.A(x) - y) - 2 * eta2 * (x - xhat)
        return x

    def stage(self, x, previous, data, stage: int, eps_scale=1.0, tau_lam=None):
        """One stage: thresholds, gradient step, consistency. Returns (x_next, x̂, ε)."""
        eps, coeffs = self.thresholds(x, previous, self.sampling_ratio(data))
        eps = eps * self.threshold_gate * eps_scale
        xhat = self.gradient_step(x, eps, coeffs, tau_lam)
        if self.modality == "mri":
            y, op = data
            x_next = self.mri_consistency(xhat, y, op, stage)
        else:
            y, op = data
            x_next = self.ct_consistency(xhat, y, op, stage)
        return x_next, xhat, eps

    def sampling_ratio(self, data):
        """(B,) or scalar fraction of measured k-space points, for a ratio-conditioned MRI model."""
        if self.threshold_net.condition is None:
            return None
        mask = data[1].mask
        return (mask != 0).float().mean(dim=(-2, -1))

    def initial(self, y, data_op):
        """(normalised data, x⁰ (B, c, H, W) normalised, per-sample scale (B,))."""
        if self.modality == "mri":
            op = as_operator(data_op)
            z = op.AH(y)
            scale = z.abs().amax(dim=(-2, -1)).clamp_min(1e-12)
            y = y / scale.view(-1, 1, 1)
            z = z / scale.view(-1, 1, 1)
            x0 = torch.stack((z.real, z.imag), dim=1) if self.channels == 2 else z.abs().unsqueeze(1)
            return (y, op), x0, scale
        op = data_op
        fbp = op.fbp(y)
        scale = fbp.abs().amax(dim=(-2, -1)).clamp_min(1e-12)
        norm = float(op.norm())
        ops = _Normalised(op, norm)
        return (y / (scale.view(-1, 1, 1) * norm), ops), (fbp / scale.view(-1, 1, 1)).unsqueeze(1), scale

    def to_image(self, x, scale):
        """(B, c, H, W) normalised → (B, H, W) data units (complex if complex=True)."""
        img = torch.complex(x[:, 0], x[:, 1]) if self.channels == 2 else x[:, 0]
        return img * scale.view(-1, 1, 1)

    def forward(self, y, data_op, stages: int | None = None) -> list[torch.Tensor]:
        """All stage outputs (B, H, W) in data units. ``data_op``: the operator (MRI: or its mask)."""
        data, x, scale = self.initial(y, data_op)
        previous, outs = None, []
        for l in range(stages or self.n_stages):
            x_next, _, _ = self.stage(x, previous, data, l)
            previous, x = x, x_next
            outs.append(self.to_image(x, scale))
        return outs


class _Normalised:
    """A/‖A‖ and its adjoint: one step size means the same at every image size and view count."""

    def __init__(self, op, norm: float):
        self.op, self.norm = op, norm

    def A(self, x):
        return self.op.A(x[:, 0]).div(self.norm)

    def AH(self, r):
        return self.op.AH(r).div(self.norm).unsqueeze(1)

    def fbp(self, r):
        """FBP of a normalised residual, in image units (≈ A⁻¹ where Aᵀ gives A/‖A‖ times less),
        divided by the largest gain of FBP∘A: with few views that gain reaches 6-7 (128² at 30
        views), so an unscaled step of 0.5 would grow the error at every inner step."""
        return self.op.fbp(r * self.norm).unsqueeze(1) / self.op.fbp_gain()


# --------------------------------------------------------------------------- training
def build_model(config: dict) -> GDUNet:
    """The network for a config (architecture keys only; see :data:`CONFIGS`)."""
    return GDUNet(**_arch(config))


_CT_OPERATORS: dict = {}  # (size, views, device) -> RadonOperator; its matrices and norm are built once


def ct_operator(size: int, views: int, device) -> "RadonOperator":  # noqa: F821
    """Parallel beam, ``views`` evenly over 180° (every 180/views-th view of a 180-view scan)."""
    from napari_unrollrecon.physics.ct import RadonOperator

    key = (int(size), int(views), str(torch.device(device)))
    if key not in _CT_OPERATORS:
        _CT_OPERATORS[key] = RadonOperator(int(size), n_views=int(views), device=device)
    return _CT_OPERATORS[key]


def make_batch(targets: torch.Tensor, rng: torch.Generator, config: dict) -> dict:
    """MRI: a mask per sample (config ``masks``/``ratios``), y = M(F x + n) with n ~ 0.1/255 (the
    authors' training noise). CT: one view count per batch from config ``views``, y = A x."""
    if targets.ndim != 3:
        raise ValueError(f"GDUNet trains on batches of 2D images (B, H, W); got shape {tuple(targets.shape)}")
    arch = _arch(config)
    dev = targets.device
    if arch["modality"] == "ct":
        target = (targets.abs() if torch.is_complex(targets) else targets).to(torch.float32)
        views = list(config.get("views") or [60, 90, 120, 180])
        n_views = int(views[int(torch.randint(len(views), (1,), generator=rng))])
        op = ct_operator(target.shape[-1], n_views, dev)
        with torch.no_grad():
            y = op.A(target)
        return {"target": target, "y": y, "operator": op, "views": n_views}
    target = targets.to(torch.complex64) if arch["complex"] else targets.abs().to(torch.float32)
    draw = learned.sample_masks(targets.shape[0], tuple(targets.shape[-2:]), config.get("masks") or ["cartesian"],
                                config.get("ratios") or [0.05, 0.1, 0.2, 0.3], rng, device=dev,
                                center_fraction=config.get("center_fraction"))
    noise = float(config.get("noise", 0.1 / 255))
    shape = (*targets.shape, 2)
    n = torch.view_as_complex(torch.randn(shape, generator=rng).mul(noise / math.sqrt(2))).to(dev)
    y = draw.mask * (fft2c(target.to(torch.complex64)) + n)
    return {"target": target, "y": y, "mask": draw.mask, "ratio": draw.ratio}


def _data(batch: dict):
    return batch["mask"] if "mask" in batch else batch["operator"]


def loss(model: GDUNet, batch: dict):
    """½·SSE of the final stage per image (mean over the batch) + 0.001·‖BBᵀ − I‖²_F."""
    final = model(batch["y"], _data(batch))[-1]
    d = final - batch["target"]
    d = torch.view_as_real(d) if torch.is_complex(d) else d
    sse = 0.5 * d.pow(2).sum() / d.shape[0]
    penalty = learned.unwrap(model).frame.penalty()
    return sse + FRAME_PENALTY * penalty, {"sse": sse.item(), "frame_penalty": penalty.item()}


def predict(model: GDUNet, batch: dict) -> torch.Tensor:
    return model(batch["y"], _data(batch))[-1]


def after_step(model: GDUNet, config: dict) -> None:
    """Config ``project_frame``: re-orthonormalise the frame after every optimiser step, so the
    tight frame (and the paper's Lipschitz bound) holds exactly, not only as a penalty."""
    if config.get("project_frame"):
        learned.unwrap(model).frame.project()


TRAINING = learned.TrainingSpec(build_model=build_model, make_batch=make_batch, loss=loss, predict=predict,
                                configs=CONFIGS, after_step=after_step)
STORE = learned.ModelStore(NAME, build_model, GDUNet)


# --------------------------------------------------------------------------- streamed run
def _bundled_for(modality: str, ratio: float | None = None):
    """Chooser among the bundled models: those trained for ``modality``; of several, the one
    trained nearest to the sampling ``ratio`` (the authors train one model per mask and ratio),
    a specialist (fewer trained ratios) before a generalist at the same distance."""
    def choose(found):
        cards = {p: learned.read_card(p) for p in found}
        fits = [p for p in found if cards[p].get("config", {}).get("modality", "mri") == modality]
        if not fits:
            raise ValueError(f"GDUNet has no bundled weights for {modality.upper()} data; give a weights file "
                             f"trained for {modality.upper()} (python -m training train gdunet-{modality})")
        return fits[0] if ratio is None else min(fits, key=lambda p: _ratio_fit(cards[p], ratio))
    return choose


def _ratio_fit(card: dict, ratio: float) -> tuple[float, int]:
    """(distance of ``ratio`` to the nearest trained ratio, number of trained ratios); a card
    naming no ratios counts as trained for every ratio, last."""
    ratios = card.get("config", {}).get("ratios") or []
    if not ratios:
        return 0.0, 1 << 30
    return round(min(abs(float(r) - ratio) for r in ratios), 6), len(ratios)


def _sampling_ratio(problem) -> float | None:
    return float((problem.operator.mask != 0).float().mean()) if problem.modality == "mri" else None


def _model_for(problem, params):
    choose = _bundled_for(problem.modality, _sampling_ratio(problem))
    model, source, card = STORE.resolve_card(params["weights"], problem.device, choose=choose)
    if model.modality != problem.modality:
        raise ValueError(f"the GDUNet weights {source} were trained for {model.modality.upper()}, but the data is "
                         f"{problem.modality.upper()}; pick {problem.modality.upper()} weights (or leave 'weights' "
                         "empty for the bundled ones)")
    return model, source, _weaker_here(card, problem)


def _weaker_here(card, problem) -> str | None:
    """The card's measured word on this setting, when the model lost to a classical method there."""
    op = problem.operator
    if problem.modality == "ct":
        return learned.weaker_note(card, "GDUNet", views=int(op.n_views))
    return learned.weaker_note(card, "GDUNet", family=mask_family(op.mask.detach().cpu().numpy()),
                               ratio=_sampling_ratio(problem))


def _fingerprint(model, problem) -> tuple:
    return (learned.model_token(model), tuple(problem.y.shape), float(problem.y.abs().sum()), problem.operator.key())


@torch.no_grad()
def _stage_info(model, l: int, eps, tau_lam) -> dict:
    info = {"tau_lambda": float(tau_lam if tau_lam is not None else TAU * model.lam.detach()),
            "eps_mean": float(eps.mean()), "eps_max": float(eps.amax())}
    if model.modality == "mri":
        info["beta"] = beta_schedule(l + 1)
    else:
        eta1, eta2 = model.step_sizes(l)
        info.update(eta1=float(eta1), eta2=float(eta2))
    return info


def run(problem, params, cache=None, start=0):
    model, source, note = _model_for(problem, params)
    n_s = int(params["stages"]) or model.n_stages
    if not 0 <= int(start) <= n_s:
        raise ValueError(f"start must be a stage number in 0..{n_s}, got {start}")
    make = UpdateMaker(problem, params, total=n_s)
    key = _fingerprint(model, problem)
    data_op = problem.operator  # built on problem.device
    y = problem.y.unsqueeze(0)
    with torch.no_grad():  # not held across the yields below: grad mode is per thread
        data, x, scale = model.initial(y.float() if problem.operator.real_valued else y.to(torch.complex64), data_op)
    first, state = resume_point(cache, key, start, "GDUNet")
    x, previous = (x, None) if state is None else state
    for l in range(first, n_s):
        if cache is not None:
            cache.put(l, (x, previous))
        eps_scale = params["eps_scale"] * params.get(f"eps_scale_{l + 1}", 1.0)
        tau_lam = params["tau_lambda"] or None
        with torch.no_grad():
            x_next, _, eps = model.stage(x, previous, data, l, eps_scale, tau_lam)
            previous, x = x, x_next
            image = model.to_image(x, scale)[0]
        channel = min(int(params["threshold_channel"]), eps.shape[1] - 1)
        extras = {f"threshold ε[{channel}]": eps[0, channel].float()} if params["show_thresholds"] else {}
        yield make(l + 1, image, label=f"GDUNet stage {l + 1}/{n_s}", extras=extras,
                   info={**_stage_info(model, l, eps, tau_lam), **({"note": note} if note else {})})
    if cache is not None:
        cache.put(n_s, (x, previous))
    return make.result(NAME, model.to_image(x, scale)[0], stages=n_s,
                       meta={"weights": source, "config": dict(model.config), **({"note": note} if note else {})})


def _stage_params() -> tuple[Param, ...]:
    return tuple(Param(f"eps_scale_{l + 1}", 1.0, low=0.0, high=10.0, live=True, stage=l + 1,
                       label=f"ε × stage {l + 1}", help=f"multiplier on the generated thresholds of stage {l + 1}")
                 for l in range(MAX_STAGE_PARAMS))


SPEC = learned.learned_spec(
    NAME, "GDUNet", ("mri", "ct"),
    (
        Param("stages", 0, kind="int", low=0, high=30, label="stages (0 = as trained)",
              help="number of unrolled stages; the modules are shared, so a model runs for any count"),
        scale_param("eps_scale", "ε × (all stages)",
                    "multiplier on every generated threshold (0 = no shrinkage: x̂ = (1 − τλ)x + τλ·WᵀWx)"),
        Param("tau_lambda", 0.0, low=0.0, high=1.0, live=True, label="τλ (0 = learned)",
              help="weight of the gradient-network step x̂ = x − τλ·G(x); 0 keeps the learned value"),
        Param("show_thresholds", True, kind="bool", live=True, label="stream threshold map",
              help="send each stage's threshold map ε of one frame channel along with the image"),
        Param("threshold_channel", 1, kind="int", low=0, high=120, live=True, label="frame channel of ε",
              help="which of the 121 frame channels' thresholds to show (0 = the constant atom)"),
        *_stage_params(),
    ),
    run=run,
    resumable=True,
    description="Unrolled reconstruction with a tight-frame gradient network whose soft thresholds come from a "
                "sub-network (local, non-local and inter-stage information); MRI and sparse-view CT.",
    reference="B. Shi, L. Huang, W. Xu, Y. Su, 'Explicitly provable gradient network for unrolled medical image "
              "reconstruction algorithms' (GDUNet), https://github.com/shibaoshun/GDUNet",
)
