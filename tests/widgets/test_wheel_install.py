"""Install like a napari-hub user: build the wheel, install it into a fresh virtual environment
and check that npe2 discovers the widget, reader, writer and samples from the installed wheel.

The venv uses ``--system-site-packages`` so torch/napari/Qt (hundreds of MB) are not downloaded
again; the plugin itself is installed from the wheel with ``--no-deps --force-reinstall`` and the
check runs with the repository *not* on ``sys.path`` and from a temporary working directory, so
the editable install in the parent environment cannot be what is found: the test asserts the
module file lives inside the new venv.

The build runs without isolation (offline; the installed setuptools builds it) and skips the
build-dependency check: setuptools >= 70.1 builds wheels without the ``wheel`` package that
``[build-system] requires`` still lists. CI can run the plain isolated ``python -m build``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, napari_unrollrecon
from npe2 import PluginManager
pm = PluginManager.instance()
pm.discover()
m = pm.get_manifest("napari-unrollrecon")
c = m.contributions
print(json.dumps({
    "module": napari_unrollrecon.__file__,
    "widgets": [w.display_name for w in c.widgets],
    "readers": [p for r in c.readers for p in r.filename_patterns],
    "writers": [e for w in c.writers for e in w.filename_extensions],
    "samples": [s.key for s in c.sample_data],
    "yaml_in_wheel": __import__("importlib.resources").resources.files("napari_unrollrecon").joinpath("napari.yaml").is_file(),
}))
"""


def _copy_sources(dest: Path) -> None:
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", dest / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)


def _share_parent_packages(py: Path) -> None:
    """Make the test environment's packages (napari, torch, npe2) importable in the new venv.

    ``--system-site-packages`` only reaches the *base* interpreter's packages, not those of the
    venv running the tests, so their directory is appended through a ``.pth`` line. Directories
    added that way are plain ``sys.path`` entries: their own ``.pth`` files - among them the
    editable-install hook of this repository - are not processed, and the new venv's own
    site-packages (holding the wheel) comes first.
    """
    import sysconfig

    parent = sysconfig.get_paths()["purelib"]
    child = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    Path(child, "zz_parent_env.pth").write_text(parent + "\n")


def test_wheel_installs_and_npe2_discovers_it(tmp_path):
    pytest.importorskip("build")
    dist, src = tmp_path / "dist", tmp_path / "src"
    _copy_sources(src)  # build from a copy: the build leaves build/ and egg-info behind
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", "--outdir", str(dist), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [wheel] = dist.glob("napari_unrollrecon-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    _share_parent_packages(py)
    out = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    out = subprocess.run([str(py), "-I", "-c", CHECK], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(env_dir) in found["module"], f"imported {found['module']}, not the wheel"
    assert found["yaml_in_wheel"]
    assert found["widgets"] == ["Reconstruction"]
    assert "*.h5" in found["readers"] and ".h5" in found["writers"]
    assert set(found["samples"]) == {"mri_phantom", "mri_phantom_magnitude", "cine_phantom", "ct_phantom"}
