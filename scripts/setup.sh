#!/usr/bin/env bash
# One-command set-up: Python >= 3.12 venv with every dependency, Debian's ffmpeg when
# missing, the package (with its native VapourSynth bridge), then the demo job unless
# --no-demo. The dependencies live in a venv cached by requirements.txt, and .venv is a
# hard-linked copy of it, so a second clone (or CI) reuses the download; any change to
# requirements.txt builds a fresh one.
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

# .venv is this clone's own venv: a hard-linked copy of the cached one (seconds, no extra
# disk), so the editable install and the plugin below belong to this clone and a second
# clone's set-up cannot re-point them. Rebuilt when the cache key changes.
if [ ! -f .venv/.vsshiftnet-key ] || [ "$(cat .venv/.vsshiftnet-key)" != "$key" ]; then
    say "making .venv from the cached venv"
    tmp=".venv.tmp.$$"
    rm -rf "$tmp"
    if ! cp -al "$venv" "$tmp" 2>/dev/null; then
        rm -rf "$tmp"
        say "the cache is on another filesystem: copying the venv (about 5 GB)"
        cp -a "$venv" "$tmp"
    fi
    # Scripts and activate files name the cache's path; sed -i writes new files, so the
    # cache's own copies (hard links) stay as they are.
    grep -rlI --null -F "$venv" "$tmp/bin" | xargs -0 -r sed -i "s#$venv#$PWD/.venv#g"
    # A project install left in the cache by an older set-up must not carry over.
    rm -rf "$tmp"/lib/python3*/site-packages/__editable__*vsshiftnet* \
        "$tmp"/lib/python3*/site-packages/vsshiftnet-*.dist-info "$tmp/.complete"
    echo "$key" > "$tmp/.vsshiftnet-key"
    rm -rf .venv
    mv "$tmp" .venv
fi
for old in "$cache"/venv-*; do  # earlier requirements' venvs: say so, delete nothing
    [ "$old" = "$venv" ] || [ ! -d "$old" ] || say "unused cached venv (remove when no clone needs it): $old"
done

say "installing vsshiftnet (editable) and its VapourSynth plugin"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# An editable install leaves the native bridge out of VapourSynth's plugin folder (it
# would land in the source tree): build it and put it there so core.shiftnet autoloads.
plugdir=$(.venv/bin/python -m vapoursynth get-plugin-dir)
.venv/bin/python -c 'from vsshiftnet.vs.native import build_plugin; print(build_plugin())' \
    | xargs -I{} cp {} "$plugdir/libshiftnet.so.tmp"
mv "$plugdir/libshiftnet.so.tmp" "$plugdir/libshiftnet.so"
# vspipe finds its Python through this per-user configuration file
"$PWD/.venv/bin/python" -m vapoursynth config >/dev/null
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
