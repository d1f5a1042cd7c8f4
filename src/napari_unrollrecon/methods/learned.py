"""What a learned method provides, so one training entry point, one weights format and one dock
serve every network (GDUNet, CGPD-CSNet, HGGDP, DD-UGM).

A learned method module defines, next to its ``SPEC`` (:func:`learned_spec`: ``MethodSpec(learned=True, ...)``), a
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
error naming any mismatch: a missing card, a file that is not safetensors, a corrupt or truncated
file, tensors that do not fit the card's architecture, or bytes that no longer match the card's
sha256. A ``.pt``/``.pth`` file is accepted only with a card beside it and is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.

Conventions for ``make_batch`` and ``loss`` (the training entry point relies on them):

* ``loss`` and ``predict`` run the network through ``model(...)`` (its ``forward``): under
  ``torch.distributed`` the model is wrapped in ``DistributedDataParallel``, which synchronises
  gradients only for work done inside ``forward``. Attributes (``model.middle``) still work: the
  trainer's wrapper falls through to the network; :func:`unwrap` returns the bare network.
* ``make_batch`` draws everything random from the ``rng`` it is given (a CPU generator; never
  the global RNG), so a run is reproducible and resumable. MRI methods conventionally take their
  mask families from the config key ``masks``; :func:`sample_masks` draws a family, a ratio
  (config ``ratios``: a list shared by all families or a table per family) and one of a pool of
  seeded masks per sample, and reads published mask files (``file:`` families). A method may
  define its own families instead (CGPD-CSNet names families with fixed ratio sets).

:func:`save_weights` writes the file and card together (the card gets the file's sha256).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from napari_unrollrecon.methods.base import Param

#: Bundled weights shipped inside the package (kept small; see docs/training.md).
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "weights"


class WeightsError(ValueError):
    """A weights file that cannot be used: missing, corrupt, truncated or for another model."""


#: The parameter every learned method declares: a weights file ("" = the bundled default).
WEIGHTS_PARAM = Param("weights", default="", kind="path", label="weights",
                      help=".safetensors file with its .json model card beside it; empty = bundled default")


@dataclass(frozen=True)
class TrainingSpec:
    build_model: Callable[[dict], torch.nn.Module]
    make_batch: Callable[..., dict]
    loss: Callable[..., tuple]
    predict: Callable[..., torch.Tensor]
    configs: dict = field(default_factory=dict)
    #: ``after_step(model, config)``, called after every optimiser step (and on the EMA copy):
    #: e.g. a projection that keeps a constraint exactly (GDUNet's tight frame).
    after_step: Callable[[torch.nn.Module, dict], None] | None = None


def learned_spec(name: str, title: str, modalities: tuple, params: tuple, **kw):
    """A learned method's MethodSpec: its weights parameter first, then its own; ``learned=True``."""
    from napari_unrollrecon.methods.base import MethodSpec

    return MethodSpec(name=name, title=title, modalities=modalities, params=(WEIGHTS_PARAM, *params),
                      learned=True, **kw)


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
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"model card {path} is not valid JSON: {e}") from None
    if not isinstance(card, dict):
        raise WeightsError(f"model card {path} must hold a JSON object, not {type(card).__name__}")
    return card


def bundled(method: str) -> list[Path]:
    """Bundled weights files for ``method`` (their cards name the method), the default first: a
    card may say ``"default": true``, else files sort by name."""
    out = []
    for p in sorted(BUNDLED_DIR.glob("*.safetensors")):
        try:
            card = read_card(p)
        except WeightsError:
            continue
        if card.get("method") == method:
            out.append((not card.get("default", False), p.stem, p))
    return [p for *_, p in sorted(out)]


def no_weights_error(method: str) -> WeightsError:
    return WeightsError(
        f"{method} has no weights: none were given (parameter 'weights') and no bundled weights for {method!r} "
        f"ship with the package ({BUNDLED_DIR}). Load a .safetensors file with its model card (dock: 'weights' file "
        f"picker; CLI: --weights FILE) or train one: python -m training train {method} --profile cpu "
        "(docs/training.md)."
    )


def resolve_weights(method: str, weights=None, choose: Callable[[list], Path] | None = None) -> Path:
    """The one rule for what a ``weights`` value means: "" / None / "default" = the bundled default
    (or ``choose(bundled files)``), a bare name = the bundled file of that stem, else a path."""
    if weights in (None, "", "default"):
        found = bundled(method)
        if not found:
            raise no_weights_error(method)
        return choose(found) if choose else found[0]
    text = str(weights)
    if "/" not in text and "\\" not in text and not text.endswith((".safetensors", ".pt", ".pth")):
        for p in bundled(method):
            if p.stem == text:
                return p
        names = [p.stem for p in bundled(method)]
        raise WeightsError(f"no bundled weights named {text!r} for {method!r}; bundled: {names or 'none'}")
    return Path(weights).expanduser()


def _setting_matches(setting: str, ratio: float | None, views: int | None) -> bool:
    """Whether a table column ("20%", "120 views") is the setting a run uses (ratio within 2.5
    percentage points, views within 10 %)."""
    text = setting.strip()
    try:
        if text.endswith("%") and ratio is not None:
            return abs(float(text[:-1]) / 100 - ratio) <= 0.025
        if text.endswith("views") and views is not None:
            n = float(text.split()[0])
            return abs(n - views) <= 0.1 * n
    except ValueError:
        return False
    return False


def weaker_note(card: dict, title: str, family: str | None = None, ratio: float | None = None,
                views: int | None = None) -> str | None:
    """Where the card's own evaluation (``evaluation[].results[setting]`` with the best classical
    row of the same bench run, see benchmarks/card_evaluation.py) found this model *below* a
    classical method at the setting of this run: a plain sentence saying so, else None."""
    for entry in card.get("evaluation") or []:
        if family is not None and entry.get("family") not in (None, family):
            continue
        for setting, r in (entry.get("results") or {}).items():
            best = r.get("best_classical_psnr")
            if best is None or r.get("psnr") is None or r["psnr"] >= best or not _setting_matches(setting, ratio, views):
                continue
            return (f"measured on {entry.get('data', entry.get('what', 'its test set'))}: {title} {r['psnr']:.2f} dB vs "
                    f"{r['best_classical']} {best:.2f} dB at {setting} — this model is below the classical method "
                    f"here; compare with {r['best_classical']}")
    return None


_MODEL_CACHE: dict = {}
_MODEL_CACHE_SIZE = 4
_MODEL_LOCK = __import__("threading").Lock()


def load_cached(path: str | Path, method: str, build_model: Callable[[dict], torch.nn.Module], device=None):
    """:func:`load_model`, cached by (file, size, mtime, device) so re-runs and benchmarks over
    many slices load once; the cached network is shared, so callers must not modify it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(torch.device(device) if device else None), method)
    with _MODEL_LOCK:
        hit = _MODEL_CACHE.get(key)
    if hit is not None:
        return hit
    out = load_model(path, method, build_model, device=device)
    with _MODEL_LOCK:
        if len(_MODEL_CACHE) >= _MODEL_CACHE_SIZE:
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
        _MODEL_CACHE[key] = out
    return out


def clear_model_cache() -> None:
    with _MODEL_LOCK:
        _MODEL_CACHE.clear()


def load_model(weights: str | Path, method: str, build_model: Callable[[dict], torch.nn.Module], device=None,
               verify: bool = True):
    """Rebuild the network from the card's config and load the tensors; returns (model, card).

    ``verify`` checks the file against the card's sha256 (when the card has one).
    """
    weights = Path(weights)
    if not weights.exists():
        raise WeightsError(f"weights file {weights} does not exist")
    if weights.suffix not in (".safetensors", ".pt", ".pth"):
        raise WeightsError(f"{weights.name}: weights must be a .safetensors file (or .pt/.pth with a card)")
    card = read_card(weights)
    if card.get("method") != method:
        raise WeightsError(f"{weights.name} holds weights for {card.get('method')!r}, not {method!r}")
    state = load_state(weights)
    if verify and card.get("sha256") and sha256(weights) != card["sha256"]:
        raise WeightsError(f"{weights.name} does not match the sha256 in its card {card_path(weights).name}: "
                           "the file was changed or damaged after the card was written; download or export it again")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"{weights.name} holds NaN or infinite values in {len(bad)} tensor(s) ({bad[0]}, ...); "
                           "these weights cannot give a finite result - retrain or export them again")
    config = card.get("config", {})
    if not isinstance(config, dict):
        raise WeightsError(f"model card {card_path(weights).name}: 'config' must be a JSON object")
    try:
        model = build_model(config)
    except Exception as e:  # noqa: BLE001 - any bad config value surfaces as the one weights error
        raise WeightsError(f"model card {card_path(weights).name}: its config does not describe a {method} network "
                           f"({type(e).__name__}: {e})") from None
    missing, unexpected, wrong = _compare(model.state_dict(), state)
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing {missing[:3]}" if missing else "",
                 f"{len(unexpected)} unexpected {unexpected[:3]}" if unexpected else "",
                 f"shape mismatch {wrong[:3]}" if wrong else ""]
        raise WeightsError(f"{weights.name} does not fit the {method} architecture of its card "
                           f"(config {_short(card.get('config', {}))}): " + "; ".join(p for p in parts if p))
    model.load_state_dict(state)
    return model.to(device).eval(), card


def load_state(weights: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, on the CPU; never unpickles arbitrary objects."""
    weights = Path(weights)
    if weights.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"{weights.name} is corrupt or truncated ({e}); download or export it again") from None
    try:
        obj = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise WeightsError(f"{weights.name} could not be read as a tensors-only checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); convert it with "
                           "`python -m training convert` or export safetensors") from None
    return _state_from(obj, weights.name)


def _state_from(obj, name: str) -> dict[str, torch.Tensor]:
    """The state dict inside a torch checkpoint: the dict itself or its 'state_dict'/'model' entry."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{name} does not hold a flat dict of tensors (a state_dict)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def save_weights(state: dict[str, torch.Tensor] | torch.nn.Module, path: str | Path, card: dict) -> Path:
    """Write ``path`` (.safetensors) and its model card; the card gets ``sha256`` and ``file``."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path.name}: weights are written as .safetensors")
    if isinstance(state, torch.nn.Module):
        state = unwrap(state).state_dict()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"method": str(card.get("method", "")), "format": "napari-unrollrecon"})
    card = dict(card, file=path.name, sha256=sha256(path), bytes=path.stat().st_size,
                parameters=int(sum(t.numel() for t in tensors.values())))
    card_path(path).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare network inside a DistributedDataParallel / torch.compile wrapper."""
    while True:
        inner = next((m for m in (getattr(model, "module", None), getattr(model, "_orig_mod", None))
                      if isinstance(m, torch.nn.Module)), None)
        if inner is None:
            return model
        model = inner


def _short(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _compare(expected: dict, got: dict):
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k}: {tuple(got[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in got and tuple(got[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong


# --------------------------------------------------------------------------- masks per sample
@dataclass
class MaskDraw:
    """Masks drawn for one batch: centred (B, H, W) float32, nominal ratios (B,), family names."""

    mask: torch.Tensor
    ratio: torch.Tensor
    family: list


def sample_masks(batch: int, shape: tuple[int, int], masks, ratios, rng: torch.Generator, device=None,
                 pool: int = 64, center_fraction: float | None = None) -> MaskDraw:
    """Draw a mask family, a ratio and one of ``pool`` seeded masks per sample (multi-ratio training).

    A family is a generated kind (``cartesian``, ``radial``...) or ``file:PATTERN`` where
    ``{pct}`` in the path is replaced by the ratio in percent (``file:/d/Cartesian/mask_{pct}.mat``,
    published masks, centring detected). ``ratios`` is a list of fractions shared by all families
    or a dict family -> list. Masks are cached per (family, shape, ratio, seed), so a pool of a few
    dozen patterns per setting costs its generation time once (Poisson discs take ~0.1 s at 256²).
    """
    masks = [masks] if isinstance(masks, str) else list(masks)
    if not masks:
        raise ValueError("sample_masks needs at least one mask family (config key 'masks')")
    table = ratios if isinstance(ratios, dict) else {m: ratios for m in masks}
    missing = [m for m in masks if not table.get(m)]
    if missing:
        raise ValueError(f"no sampling ratios for mask families {missing}; set config 'ratios'")
    out, rs, fams = [], [], []
    for _ in range(batch):
        fam = masks[int(torch.randint(len(masks), (1,), generator=rng))]
        choices = table[fam]
        ratio = float(choices[int(torch.randint(len(choices), (1,), generator=rng))])
        seed = int(torch.randint(max(1, pool), (1,), generator=rng))
        seed = 0 if fam.startswith("file:") else seed  # one fixed pattern per file
        out.append(_cached_mask(fam, tuple(shape), ratio, seed, center_fraction))
        rs.append(ratio)
        fams.append(fam)
    mask = torch.from_numpy(np.stack(out)).to(device)
    return MaskDraw(mask=mask, ratio=torch.tensor(rs, dtype=torch.float32, device=device), family=fams)


@lru_cache(maxsize=1024)
def _cached_mask(kind, shape, ratio, seed, center_fraction):
    from napari_unrollrecon.physics.masks import MaskError, make_mask

    if kind.startswith("file:"):
        from napari_unrollrecon.engine.io import read_mask  # the one mask-file reader (training only)

        path = kind[5:].replace("{pct}", f"{round(ratio * 100, 6):g}")
        m = read_mask(path)[0]
        if m.shape != shape:
            raise MaskError(f"mask file {path} is {m.shape} but the training images are {shape}; "
                            "train on whole images (data.patch = 0) with mask files")
        m.setflags(write=False)
        return m
    m = make_mask(kind, shape, ratio, seed=seed, center_fraction=center_fraction)
    m.setflags(write=False)
    return m


# --------------------------------------------------------------------------- models for runs
_STORES: dict = {}  # method name -> its ModelStore


def overridden(method: str) -> bool:
    """Whether runs of ``method`` currently use an in-memory model (tests, notebooks)."""
    store = _STORES.get(method)
    return store is not None and store.overridden


class ModelStore:
    """Where a learned method's streamed run gets its network: an in-memory override (tests,
    notebooks), else the weights :func:`resolve_weights` names (a user file, a bundled name or the
    bundled default), loaded through :func:`load_cached` - the one weights layer, which
    ``engine.weights`` (CLI, bench, listings) uses too."""

    def __init__(self, method: str, build_model: Callable[[dict], torch.nn.Module], model_type: type):
        import threading

        self.method, self.build_model, self.model_type = method, build_model, model_type
        self._overrides: list = []
        self._lock = threading.Lock()
        _STORES[method] = self

    @property
    def overridden(self) -> bool:
        with self._lock:
            return bool(self._overrides)

    def override(self, model: torch.nn.Module):
        """Context manager: runs use ``model`` instead of a weights file (module-wide, so a run in
        a worker thread sees it too)::

            with STORE.override(build_model(CONFIGS["cpu"])):
                result = engine.stream.run(SPEC, problem)
        """
        from contextlib import contextmanager

        if not isinstance(model, self.model_type):
            raise TypeError(f"{self.method} override needs a {self.model_type.__name__}, got {type(model).__name__}")

        @contextmanager
        def scope():
            with self._lock:
                self._overrides.append(model)
            try:
                yield model
            finally:
                with self._lock:
                    self._overrides.remove(model)

        return scope()

    def no_weights_error(self) -> ValueError:
        return no_weights_error(self.method)

    def resolve(self, weights, device, choose=None) -> tuple[torch.nn.Module, str]:
        """(model, where it came from): the override, else the file :func:`resolve_weights`
        names, loaded through the shared cache. ``choose(files)`` picks among bundled files."""
        return self.resolve_card(weights, device, choose)[:2]

    def resolve_card(self, weights, device, choose=None) -> tuple[torch.nn.Module, str, dict]:
        """:meth:`resolve` and the model card (empty for an in-memory override)."""
        with self._lock:
            override = self._overrides[-1] if self._overrides else None
        if override is not None:
            return override.to(device).eval(), "in-memory model (override)", {}
        path = resolve_weights(self.method, weights, choose)
        model, card = load_cached(path, self.method, self.build_model, device=device)
        return model, path.name, card


_TOKENS = iter(range(1, 1 << 62))


def model_token(model: torch.nn.Module) -> int:
    """A number that identifies ``model`` for as long as it lives and is never reused (unlike
    ``id``), so a stage cache filled by one model is never taken for another's."""
    token = getattr(model, "_unrollrecon_token", None)
    if token is None:
        token = next(_TOKENS)
        object.__setattr__(model, "_unrollrecon_token", token)
    return token
