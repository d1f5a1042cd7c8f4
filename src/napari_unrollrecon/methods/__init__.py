"""Reconstruction methods; each module defines a :class:`~.base.MethodSpec` named ``SPEC``."""
