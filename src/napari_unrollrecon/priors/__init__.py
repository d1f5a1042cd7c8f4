"""Priors: score networks ``s(x, σ) ≈ ∇ log p_σ(x)``, analytic scores and low-rank projections.

Qt-free and torch-only. Samplers (:mod:`napari_unrollrecon.samplers`) see a prior only through
the :class:`~napari_unrollrecon.priors.score.ScoreFunction` interface.
"""
