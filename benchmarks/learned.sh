#!/usr/bin/env bash
# Regenerate the README tables of the learned methods from the shipped weights (bundled in the
# package; no --weights needed). Each table is one `bench` run with its baselines, so rows of a
# table share the machine state. DATA defaults to ../shared/datasets.
# Usage: bash benchmarks/learned.sh [cgpd|cgpd-families|gdunet-mri|gdunet-ct|all]   (runs in .venv)
# CGPD_METHODS=zero-filled,cgpd-csnet skips the (slow) TV/L1 rows of the CGPD tables.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # one thread per bench: several run side by side
cd "$(dirname "$0")/.."
DATA=${UNROLLRECON_DATA:-../shared/datasets}
BENCH=".venv/bin/napari-unrollrecon bench"
OUT=benchmarks/results
BRAIN=$DATA/ISTA-Net-PyTorch/data/BrainImages_test
CGPD_METHODS=${CGPD_METHODS:-zero-filled,tv,l1-wavelet,cgpd-csnet}
what=${1:-all}

if [[ $what == cgpd || $what == all ]]; then
  # CGPD-CSNet (13 stages), the paper's Cartesian masks at trained and untrained ratios, paper convention
  $BENCH "$BRAIN" --methods "$CGPD_METHODS" --metric-convention cgpd \
    --masks "file:$DATA/CGPD-CSNet/sampling_matrix/Cartesian/mask_{pct}.mat" --ratios 10,20,30,40,50 \
    -o $OUT/brain50_cgpd13_cartesian -q
  $BENCH "$BRAIN" --methods "$CGPD_METHODS" --metric-convention cgpd \
    --masks "file:$DATA/CGPD-CSNet/sampling_matrix/Cartesian_untrained/mask_{pct}.mat" --ratios 15,25,35,45 \
    -o $OUT/brain50_cgpd13_untrained -q
fi
if [[ $what == cgpd-families || $what == all ]]; then
  # CGPD-CSNet's other two mask families, the paper's mask files: the method picks the bundled
  # model trained for the mask's family (methods/cgpd_csnet.py pick_model)
  $BENCH "$BRAIN" --methods "$CGPD_METHODS" --metric-convention cgpd \
    --masks "file:$DATA/CGPD-CSNet/sampling_matrix/pseudo-radial/mask_{pct}.mat" --ratios 10,20,30,40,50 \
    -o $OUT/brain50_cgpd13_radial -q
  $BENCH "$BRAIN" --methods "$CGPD_METHODS" --metric-convention cgpd \
    --masks "file:$DATA/CGPD-CSNet/sampling_matrix/2D-random/mask_{pct}.mat" --ratios 5,10,20,30,40 \
    -o $OUT/brain50_cgpd13_random2d -q
fi
if [[ $what == gdunet-mri || $what == all ]]; then
  # GDUNet MRI: one model for Cartesian 5-30 % (generated masks, seed 0)
  $BENCH "$DATA/HGGDP/hggdp_rec/test_image31" --methods zero-filled,tv,l1-wavelet,gdunet \
    --masks cartesian --ratios 5,10,20,30 --metric-convention gdunet -o $OUT/siat31_gdunet_cartesian -q
  $BENCH "$BRAIN" --methods zero-filled,tv,l1-wavelet,gdunet \
    --masks cartesian --ratios 5,10,20,30 --metric-convention cgpd -o $OUT/brain50_gdunet_cartesian -q
fi
if [[ $what == gdunet-ct || $what == all ]]; then
  # GDUNet CT: the 12 AAPM slices averaged to 256², parallel beam, views over 180°
  $BENCH "$DATA/GMSD-AAPM-CT/Test_CT" --methods fbp,tv,l1-wavelet,gdunet --views 60,90,120,180 \
    --downsample 2 --metric-convention gdunet-ct -o $OUT/aapm12_gdunet_ct -q
fi
