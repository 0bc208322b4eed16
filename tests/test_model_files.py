"""Any file given as a model gets one line saying what it is and what was expected (issue 12):
text, random bytes, unsafe pickles (never executed), truncated files, the other task's model,
foreign state dicts; through load_model, core.shiftnet and the ffpipe command."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vsshiftnet import ModelError, load_model

from .conftest import REPO, tiny_net

EXPECTED = "expected a Shift-Net checkpoint"


class _Payload:
    """Pickles into a call that creates a marker file: proof that nothing ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _files(d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the phrase its error must hold)."""
    marker = d / "PWNED"
    good = d / "good.pth"
    net = tiny_net("deblur")
    torch.save({"params": net.state_dict(), "config": net.config.to_dict()}, good)
    out: dict[str, tuple[Path, str]] = {}

    def add(name: str, data: bytes, phrase: str) -> None:
        (d / name).write_bytes(data)
        out[name] = (d / name, phrase)

    add("notes.pth", b"model weights go here\n", "is a text file (starts with 'model weights")
    add("random.pth", np.random.default_rng(1).bytes(5000), "unrecognised binary data")
    add("empty.pth", b"", "is empty")
    add("cut.pth", good.read_bytes()[:3000], "truncated or damaged torch checkpoint")
    add("unsafe-plain.pkl.pth", pickle.dumps({"params": _Payload(marker)}, protocol=4),
        "is an unsafe pickle: loading it would import posix.system")
    torch.save({"params": {"w": torch.zeros(2)}, "x": _Payload(marker)}, d / "unsafe.pth")
    out["unsafe.pth"] = (d / "unsafe.pth", "is an unsafe pickle: loading it would import "
                         "posix.system")
    torch.save({"conv.weight": torch.zeros(3, 3)}, d / "foreign.pth")
    out["foreign.pth"] = (d / "foreign.pth", "most not named like a Shift-Net's")
    torch.save([1, 2, 3], d / "list.pth")
    out["list.pth"] = (d / "list.pth", "holds a list, not a state dict")
    torch.save({"params": net.state_dict(), "config": {"task": "deblur", "c0": "wide"}},
               d / "badconfig.pth")
    out["badconfig.pth"] = (d / "badconfig.pth", "not a valid Shift-Net configuration")
    out["other-task.pth"] = (good, "is a deblur model, not a denoise model")
    return out


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return _files(tmp_path_factory.mktemp("models"))


def test_every_bad_file_gets_one_line_naming_it(bad_models) -> None:
    for name, (path, phrase) in bad_models.items():
        with pytest.raises(ModelError) as e:
            load_model(path, task="denoise")
        msg = str(e.value)
        assert phrase in msg, (name, msg)
        assert "\n" not in msg and len(msg.replace(str(path), "")) < 300, (name, msg)
        if name not in ("other-task.pth", "badconfig.pth"):  # these say what to use instead
            assert str(path) in msg and EXPECTED in msg, (name, msg)
    assert not (next(iter(bad_models.values()))[0].parent / "PWNED").exists()


def test_unsafe_pickle_is_not_called_truncated(bad_models) -> None:
    for name in ("unsafe.pth", "unsafe-plain.pkl.pth"):
        with pytest.raises(ModelError) as e:
            load_model(bad_models[name][0])
        assert "unsafe" in str(e.value) and "truncated" not in str(e.value)


def test_legacy_torch_format_still_loads(tmp_path: Path) -> None:
    net = tiny_net("denoise")
    path = tmp_path / "legacy.pth"
    torch.save({"params": net.state_dict(), "config": net.config.to_dict()}, path,
               _use_new_zipfile_serialization=False)
    assert load_model(path).config == net.config


def test_vapoursynth_function_reports_one_line(bad_models) -> None:
    import vapoursynth as vs

    from vsshiftnet.vs import ensure_plugin

    core = vs.core
    ensure_plugin(core)
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=32, length=4)
    for name in ("notes.pth", "random.pth", "unsafe.pth", "cut.pth"):
        path, phrase = bad_models[name]
        with pytest.raises(vs.Error) as e:
            core.shiftnet.Denoise(clip, sigma=10, model=str(path))
        assert str(e.value).startswith("shiftnet.Denoise: cannot load model"), str(e.value)
        assert phrase in str(e.value) and "Traceback" not in str(e.value)


def test_ffpipe_and_filter_commands_print_one_line(bad_models, tmp_path: Path) -> None:
    clip = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc2=s=64x48:r=10:d=0.4", "-c:v", "ffv1", str(clip)], check=True)
    for name in ("notes.pth", "unsafe.pth"):
        path, phrase = bad_models[name]
        r = subprocess.run([sys.executable, "-m", "vsshiftnet.ffpipe", str(clip),
                            str(tmp_path / "out.mkv"), "--sigma", "10", "--model", str(path),
                            "--no-progress", "--matrix", "bt709"],
                           capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 1
        errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
        assert len(errors) == 1 and phrase in errors[0], r.stderr
        assert "Traceback" not in r.stderr and "Warning" not in r.stderr
        assert not (tmp_path / "out.mkv").exists()
