"""DD-UGM schedule trials on the validation series (heart p32 z4, 20 frames, 192²), as in
docs/methods/dd-ugm.md: zero-filled and L+S (30) for reference, then DD-UGM settings.

    .venv/bin/python benchmarks/ddugm_validation.py X.safetensors K.safetensors R10+ACS20[,radial15]
"""
import sys
import time

import numpy as np
from napari_unrollrecon.engine import bench, problems, registry, stream
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.methods import dd_ugm_models as M
from napari_unrollrecon.methods.learned import load_model
import os
D = os.environ.get("UNROLLRECON_DATA", str(__import__("pathlib").Path(__file__).parents[1] / "../shared/datasets"))
series = bench._images(f"{D}/CGPD-CSNet/data/heart_test", None, dynamic=True, group=r"p32t\d+z(4)", fit=(192,192))[0]
x0 = series.astype(np.float32) / series.max()
masks = {"R10+ACS20": f"file:{D}/DD-UGM/mask/mask_Rn/mask_R10.mat|file:{D}/DD-UGM/mask/mask_acs/mask_acs20.mat",
         "radial15": f"file:{D}/DD-UGM/mask/mask_Radial/radial15.mat"}
mx = load_model(sys.argv[1], "dd-ugm-x", M.build_model)[0]
mk = load_model(sys.argv[2], "dd-ugm-k", M.build_model)[0]
grid = [dict(init="zero-filled", iterations=15, sigma_start=0.1, fusion=0.75),
        dict(init="lplus-s", warm_iterations=30, iterations=5, sigma_start=0.03, fusion=0.75),
        dict(init="lplus-s", warm_iterations=30, iterations=5, sigma_start=0.03, fusion=0.0),
        dict(init="lplus-s", warm_iterations=30, iterations=5, sigma_start=0.03, fusion=1.0),
        dict(init="lplus-s", warm_iterations=30, iterations=5, sigma_start=0.03, fusion=0.75, lowrank=False)]
for mname in sys.argv[3].split(","):
    mask = bench.tile_frames(bench._mask_for(masks[mname], 0, 0).make((16,192,192))[0], 20)
    p = problems.mri_from_image(x0, mask)
    zf = evaluate(np.abs(p.operator.AH(p.y).numpy()), x0, "ddugm")["psnr"]
    r = stream.run(registry.get("lplus-s"), p, {"iterations": 30})
    print(mname, "zf", round(zf,2), "lplus-s(30)", round(evaluate(r.image, x0, "ddugm")["psnr"], 2), flush=True)
    with M.STORES["dd-ugm-k"].override(mk), M.STORES["dd-ugm-x"].override(mx):
        for g in grid:
            t=time.perf_counter()
            r = stream.run(registry.get("dd-ugm"), p, g)
            print(mname, g, round(evaluate(r.image, x0, "ddugm")["psnr"],2), round(time.perf_counter()-t,1), "s", flush=True)
