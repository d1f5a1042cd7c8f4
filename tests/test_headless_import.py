"""The core (everything but _widgets) must import and run without napari or Qt."""

import subprocess
import sys

SCRIPT = r"""
import importlib.abc, sys

BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"GUI module {name} imported by the core")

sys.meta_path.insert(0, Block())
import pkgutil, napari_unrollrecon
for mod in pkgutil.walk_packages(napari_unrollrecon.__path__, "napari_unrollrecon."):
    if "_widgets" in mod.name or mod.name.rsplit(".", 1)[-1] in ("_reader", "_writer", "_sample_data", "__main__"):
        continue
    importlib.import_module(mod.name)

import numpy as np
from napari_unrollrecon.engine import phantoms, problems, registry, stream
from napari_unrollrecon.physics.masks import make_mask
x = np.abs(phantoms.mri_phantom(32))
for name in registry.names():
    registry.get(name)
res = stream.run(registry.get("tv"), problems.mri_from_image(x, make_mask("cartesian", (32, 32), 0.3)), {"iterations": 3})
assert res.image.shape == (32, 32)
for floor in ("priors.ncsn", "priors.ncsnpp", "priors.lowrank", "priors.score", "samplers.sde", "samplers.steps",
              "physics.operator", "physics.kweight"):
    assert "napari_unrollrecon." + floor in sys.modules, floor
res = stream.run(registry.get("gaussian-langevin"), problems.mri_from_image(x, make_mask("radial", (32, 32), 0.3)),
                 {"levels": 2, "steps": 2, "samples": 2})
assert res.samples.shape == (2, 32, 32) and res.std.shape == (32, 32)
print("OK", len(sys.modules))
"""


def test_core_imports_without_gui():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK")


def test_guard_can_fail():
    """The blocker really blocks: importing napari under it fails."""
    bad = SCRIPT.split("import pkgutil")[0] + "import napari\n"
    r = subprocess.run([sys.executable, "-c", bad], capture_output=True, text=True)
    assert r.returncode != 0 and "GUI module napari imported by the core" in r.stderr
