"""Samplers: SDEs and the predictor / corrector / Langevin steps that score-based methods chain.

Qt-free and torch-only; no device default anywhere: every tensor follows the input ``x`` and the
``torch.Generator`` passed in (seeded by the method from its ``seed`` parameter), so a run can be
replayed bit for bit. Structure after score_sde_pytorch's ``sde_lib`` / ``sampling`` (predictors
and correctors as small registered steps), written anew.
"""
