"""napari-unrollrecon: watch unrolled networks and score-based samplers reconstruct MRI and CT.

Floors of the package (each imports only from the floors below it):

* ``physics``  - forward operators (one protocol), FFT convention, sampling masks, CT projector.
* ``priors``   - score functions: NCSN RefineNet, the analytic Gaussian score, channel stacks.
* ``samplers`` - VE SDE σ ladders, predictor / corrector / Langevin steps.
* ``methods``  - one module per reconstruction method; each is a generator that yields one
  :class:`~napari_unrollrecon.methods.base.Update` per stage and accepts live parameter changes.
* ``engine``   - registry, metrics, readers/writers, problem builders, benchmark driver.
* ``_widgets`` / ``cli`` - the napari dock widgets (Qt) and the command line.

Nothing below ``_widgets`` imports napari or Qt.
"""

__version__ = "0.1.0"

#: Our key in napari layer metadata (reader, writer, samples, dock): defined once, here.
META_KEY = "unrollrecon"
