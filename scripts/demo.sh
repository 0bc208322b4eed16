#!/usr/bin/env bash
# The main job on the shipped default models, offline: make a short clip with ffmpeg's own
# test source, add noise, restore it three ways (ffpipe, vspipe | ffmpeg, y4m filter) and
# report PSNR against the clean clip. Outputs land in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=out/demo
mkdir -p "$out"
say() { printf 'demo: %s\n' "$*" >&2; }
psnr() {  # average PSNR (Y) of $1 against $2
    ffmpeg -nostdin -hide_banner -v error -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 \
        | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n1
}
ffmpeg -nostdin -hide_banner -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25:duration=1.2" \
    -f lavfi -i "sine=frequency=440:duration=1.2" -shortest \
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
$py -c 'import vsshiftnet, sys; c = vsshiftnet.list_cards()["denoise-cpu"]; print(f"model: {c.name} ({c.extra.get(\"status\", \"\")})", file=sys.stderr)'
say "outputs in $out/"
