#!/usr/bin/env bash
# HGGDP evaluation on the 31 SIAT test slices with the HGGDP masks (final-iteration metrics,
# --metric-convention hggdp), beside zero-filled, TV, L1-wavelet and GDUNet of the same run; one
# bench run (and one results file) per mask, so a partial run keeps what it finished.
# Usage: bash benchmarks/hggdp.sh [WEIGHTS|"" [MASK ...]]   (default: the bundled HGGDP weights, all
# masks: radial/random/cart at 10, 20, 30 % and the R ≈ 6.7 masks radial_015, random_015, cart_085
# - the last one's name is not its ratio: 15.2 % sampled). Two of these can run side by side.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${UNROLLRECON_DATA:-../shared/datasets}
T31=$DATA/HGGDP/hggdp_rec/test_image31
M=$DATA/HGGDP/hggdp_rec/mask
METHODS=${METHODS:-zero-filled,tv,l1-wavelet,gdunet,hggdp}
W=${1:+--param hggdp:weights=$1}   # only HGGDP takes these weights (GDUNet keeps its bundled ones)
shift || true
MASKS=${*:-radial_015 random_015 cart_085 radial_010 radial_020 radial_030 random_010 random_020 random_030 cart_010 cart_020 cart_030}
for m in $MASKS; do
  r=${m##*_}; r=$((10#$r)); [ "$m" = cart_085 ] && r=15   # the ratio column only
  .venv/bin/napari-unrollrecon bench "$T31" --methods "$METHODS" --metric-convention hggdp $W \
    --masks "file:$M/mask_$m.mat" --ratios $r -o "benchmarks/results/siat31_hggdp_$m" -q
done
