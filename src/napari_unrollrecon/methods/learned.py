"""What a learned method provides, so one training entry point, one weights format and one dock
serve every network (GDUNet, CGPD-CSNet, HGGDP, DD-UGM).

A learned method module defines, next to its ``SPEC`` (``MethodSpec(learned=True, ...)``), a
``TRAINING = TrainingSpec(...)``:

* ``build_model(config: dict) -> torch.nn.Module`` - the network for a config (the paper's full
  configuration and a reduced CPU one are named presets in ``configs``).
* ``make_batch(targets: Tensor, rng: torch.Generator, config: dict) -> dict`` - simulate the
  measurements for a batch of ground-truth images (B, H, W) (complex for MRI, real for CT) on
  the fly: draws the mask family / ratio / views per sample as the config says. The dict holds
  tensors on ``targets.device`` (at least ``"target"``) and whatever ``loss`` needs.
* ``loss(model, batch) -> (Tensor, dict[str, float])`` - the training loss and scalars to log.
* ``predict(model, batch) -> Tensor`` - the final image (B, H, W) for validation PSNR.
* ``configs: dict[str, dict]`` - at least ``"paper"`` and ``"cpu"``.

Weights are ``.safetensors`` files (tensors only - never pickle) with a model card beside them,
``<name>.json``: {"method", "config", "data", "steps", "wall_time_s", "metrics", "sha256", ...}.
:func:`load_model` rebuilds the model from the card's config and loads the tensors, with a clear
error naming any mismatch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

#: Bundled weights shipped inside the package (kept small; see docs/training.md).
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "weights"


class WeightsError(ValueError):
    """A weights file that cannot be used: missing, corrupt, truncated or for another model."""


@dataclass(frozen=True)
class TrainingSpec:
    build_model: Callable[[dict], torch.nn.Module]
    make_batch: Callable[..., dict]
    loss: Callable[..., tuple]
    predict: Callable[..., torch.Tensor]
    configs: dict = field(default_factory=dict)


def card_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(weights: str | Path) -> dict:
    path = card_path(weights)
    if not path.exists():
        raise WeightsError(f"no model card {path.name} beside {Path(weights).name}; a weights file needs its card "
                           "(config, training data) to rebuild the network")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"model card {path} is not valid JSON: {e}") from None


def bundled(method: str) -> list[Path]:
    """Bundled weights files for ``method`` (their cards name the method)."""
    out = []
    for p in sorted(BUNDLED_DIR.glob("*.safetensors")):
        try:
            if read_card(p).get("method") == method:
                out.append(p)
        except WeightsError:
            continue
    return out


def load_model(weights: str | Path, method: str, build_model: Callable[[dict], torch.nn.Module], device=None):
    """Rebuild the network from the card's config and load the tensors; returns (model, card)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(weights)
    if not weights.exists():
        raise WeightsError(f"weights file {weights} does not exist")
    if weights.suffix != ".safetensors":
        raise WeightsError(f"{weights.name}: only .safetensors weights are accepted (no pickled .pt/.pth files)")
    card = read_card(weights)
    if card.get("method") != method:
        raise WeightsError(f"{weights.name} holds weights for {card.get('method')!r}, not {method!r}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{weights.name} is corrupt or truncated ({e}); download or export it again") from None
    model = build_model(card.get("config", {}))
    missing, unexpected, wrong = _compare(model.state_dict(), state)
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"shape mismatch {wrong[:3]}" if wrong else ""]
        raise WeightsError(f"{weights.name} does not fit the {method} architecture of its card: "
                           + "; ".join(p for p in parts if p))
    model.load_state_dict(state)
    return model.to(device).eval(), card


def _compare(expected: dict, got: dict):
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k}: {tuple(got[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in got and tuple(got[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong
