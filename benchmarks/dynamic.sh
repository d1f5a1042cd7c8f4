#!/usr/bin/env bash
# The README's dynamic MRI table: DD-UGM (bundled weights, fast schedule) beside zero-filled,
# spatio-temporal TV, L1-wavelet and L+S of the same run, final iteration, --metric-convention
# ddugm; one bench run (and results file benchmarks/results/dynamic_<job>.md/.csv) per job, so a
# partial run keeps what it finished. Jobs ending in "-nonet" run DD-UGM with its score-model
# steps off (networks=false: the low-rank step and data consistency alone), the ablation.
# Usage: bash benchmarks/dynamic.sh [JOB ...]   (two of these can run side by side)
#   p33_cart    heart patient 33: 5 slices as 20-frame series, centre-cropped 256² → 192², the
#               authors' Cartesian R10 | ACS20 16-frame masks repeated over the 20 frames
#   p33_radial  the same series, the authors' radial 15 % masks
#   tmi_own     data_tmi_fast (10 frames, 110², complex) with its own k-t mask (Cartesian, 24.5 %)
#   tmi_cart    the same series, generated equispaced Cartesian R10 k-t masks with centre lines
#   tmi_radial  the same series, generated radial 15 % k-t masks
#   any of these + "-nonet"
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$(dirname "$0")/.."
DATA=${UNROLLRECON_DATA:-../shared/datasets}
M=$DATA/DD-UGM/mask
METHODS=${METHODS:-zero-filled,tv,l1-wavelet,lplus-s,dd-ugm}
P33=("$DATA/CGPD-CSNet/data/heart_test" --dynamic --group 'p33t\d+z(\d)' --fit 192,192 --tile-mask-frames)
TMI=("$DATA/yhao-z-dMRI-Data/data_tmi_fast.mat" --dynamic --key seq)
JOBS=${*:-p33_cart p33_radial tmi_own tmi_cart tmi_radial p33_cart-nonet p33_radial-nonet tmi_own-nonet tmi_cart-nonet tmi_radial-nonet}
for job in $JOBS; do
  base=${job%-nonet}
  if [ "$base" != "$job" ]; then what=(--methods dd-ugm --param dd-ugm:networks=false); else what=(--methods "$METHODS"); fi
  case $base in
    p33_cart) src=("${P33[@]}" --masks "file:$M/mask_Rn/mask_R10.mat|file:$M/mask_acs/mask_acs20.mat" --ratios 10) ;;
    p33_radial) src=("${P33[@]}" --masks "file:$M/mask_Radial/radial15.mat" --ratios 15) ;;
    tmi_own) src=("${TMI[@]}" --masks "file:$DATA/yhao-z-dMRI-Data/data_tmi_fast.mat#mask" --ratios 0) ;;
    tmi_cart) src=("${TMI[@]}" --masks equispaced --ratios 10) ;;
    tmi_radial) src=("${TMI[@]}" --masks radial --ratios 15) ;;
    *) echo "unknown job $job" >&2; exit 2 ;;
  esac
  .venv/bin/napari-unrollrecon bench "${src[@]}" "${what[@]}" --metric-convention ddugm \
    -o "benchmarks/results/dynamic_$job" -q
done
