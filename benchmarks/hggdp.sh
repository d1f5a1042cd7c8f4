#!/usr/bin/env bash
# HGGDP evaluation on the 31 SIAT test slices with the HGGDP masks (final-iteration metrics,
# --metric-convention hggdp), beside zero-filled, TV, L1-wavelet and GDUNet of the same run.
# Usage: bash benchmarks/hggdp.sh [WEIGHTS]   (default: the bundled HGGDP weights)
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cd "$(dirname "$0")/.."
DATA=${UNROLLRECON_DATA:-../shared/datasets}
BENCH=".venv/bin/napari-unrollrecon bench"
OUT=benchmarks/results
T31=$DATA/HGGDP/hggdp_rec/test_image31
M=$DATA/HGGDP/hggdp_rec/mask
METHODS=${METHODS:-zero-filled,tv,l1-wavelet,gdunet,hggdp}
W=${1:+--param hggdp:weights=$1}   # only HGGDP takes these weights (GDUNet keeps its bundled ones)
for fam in radial random cart; do
  $BENCH "$T31" --methods "$METHODS" --metric-convention hggdp $W \
    --masks "file:$M/mask_${fam}_{pct:03g}.mat" --ratios 10,20,30 -o $OUT/siat31_hggdp_$fam -q
done
# R ≈ 6.7: radial 15 %, random 15 %, and cart_085 (its file name is not its ratio: 15.2 % sampled)
$BENCH "$T31" --methods "$METHODS" --metric-convention hggdp $W \
  --masks "file:$M/mask_radial_015.mat,file:$M/mask_random_015.mat,file:$M/mask_cart_085.mat" --ratios 15 \
  -o $OUT/siat31_hggdp_r67 -q
