#!/usr/bin/env bash
# One-command set-up: Python >= 3.12 venv with every dependency, Debian's ffmpeg when
# missing, the package (with its native VapourSynth bridge), then the demo job unless
# --no-demo. The venv lives in a cache keyed by requirements.txt, and .venv links to it,
# so a second clone (or CI) reuses it; any change to requirements.txt builds a fresh one.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1
[ "${1:-}" = "--no-demo" ] && demo=0
say() { printf 'setup: %s\n' "$*" >&2; }

find_python() {
    local c v
    local candidates=("${PYTHON:-}" python3.13 python3.12 python3)
    if command -v pyenv >/dev/null 2>&1; then
        for v in "$(pyenv root)"/versions/3.1[2-9]*/bin/python3; do candidates+=("$v"); done
    fi
    for c in /usr/bin/python3.1[2-9] /usr/local/bin/python3.1[2-9]; do candidates+=("$c"); done
    for c in "${candidates[@]}"; do
        [ -n "$c" ] || continue
        if "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
            command -v "$c" 2>/dev/null || echo "$c"
            return 0
        fi
    done
    return 1
}

py=$(find_python) || {
    say "no Python >= 3.12 found (VapourSynth's wheel needs 3.12+)."
    say "install one (e.g. 'pyenv install 3.12' or Debian's python3.12) or set PYTHON=/path/to/python3.12"
    exit 1
}
say "using $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        say "installing ffmpeg from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        say "ffmpeg/ffprobe missing: install them (e.g. 'sudo apt-get install ffmpeg') and rerun"
        exit 1
    fi
fi

key=$( (cat requirements.txt; "$py" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
cache=${VSSHIFTNET_CACHE:-$HOME/.cache/vsshiftnet}
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
    say "creating $venv (torch is a large download: several minutes the first time)"
    rm -rf "$venv"
    mkdir -p "$cache"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -r requirements.txt
    touch "$venv/.complete"
else
    say "reusing cached venv $venv"
fi
ln -sfn "$venv" .venv

say "installing vsshiftnet (editable) and its VapourSynth plugin"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# An editable install leaves the native bridge out of VapourSynth's plugin folder (it
# would land in the source tree): build it and put it there so core.shiftnet autoloads.
plugdir=$(.venv/bin/python -m vapoursynth get-plugin-dir)
.venv/bin/python -c 'from vsshiftnet.vs.native import build_plugin; print(build_plugin())' \
    | xargs -I{} cp {} "$plugdir/libshiftnet.so.tmp"
mv "$plugdir/libshiftnet.so.tmp" "$plugdir/libshiftnet.so"
# vspipe finds its Python through this per-user configuration file
"$venv/bin/python" -m vapoursynth config >/dev/null  # by real path: vspipe resolves links
.venv/bin/python - >&2 <<'PY'
import vapoursynth as vs
ok = hasattr(vs.core, "shiftnet")
print(f"setup: core.shiftnet {'autoloads' if ok else 'MISSING'} from the plugin folder")
raise SystemExit(0 if ok else 1)
PY

if [ "$demo" = 1 ]; then
    bash scripts/demo.sh
fi
say "done. Activate with: source .venv/bin/activate"
