"""Checkpoints that resume exactly: the LoRA weights, the optimizer and learning-rate
schedule, every random generator's state and the step (the data order follows from the seed
and the step). Each is written into a hidden temporary folder and renamed into place, so a
run killed while writing loses nothing already finished: ``step-NNNNNN`` folders are always
complete, and leftovers of an interrupted write (``.tmp-*``) are ignored and cleaned up.
"""

import json
import os
import pathlib
import random
import re
import shutil

import numpy as np
import torch

from .._errors import invalid
from .cache import atomic_save_tensors

_NAME = re.compile(r"^step-(\d{6,})$")


def rng_states() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: pathlib.Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(folder, step: int, lora: dict, training_state: dict, keep: int) -> pathlib.Path:
    """Writes folder/step-NNNNNN atomically; keeps the newest `keep` checkpoints (0: all)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    tmp = folder / f".tmp-step-{step:06d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    atomic_save_tensors(lora, tmp / "lora.safetensors")
    with open(tmp / "state.pt", "wb") as f:
        torch.save(training_state, f)
        f.flush()
        os.fsync(f.fileno())
    (tmp / "meta.json").write_text(json.dumps({"step": step}) + "\n")
    _fsync_dir(tmp)
    old = None
    if final.exists():  # the same step saved again: set the old one aside, then replace it
        old = folder / f".tmp-old-step-{step:06d}-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(folder)
    if keep > 0:
        for old in list_checkpoints(folder)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(folder) -> list:
    """Finished checkpoints, oldest first."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def clean_partial(folder) -> None:
    """Removes what an interrupted save left (hidden .tmp-* folders)."""
    folder = pathlib.Path(folder)
    if folder.is_dir():
        for p in folder.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def resolve(resume, folder) -> pathlib.Path:
    """The checkpoint to resume from: "latest" (None when there is none yet) or a path."""
    if resume == "latest":
        found = list_checkpoints(folder)
        return found[-1] if found else None
    path = pathlib.Path(resume)
    if not (path / "state.pt").is_file() or not (path / "lora.safetensors").is_file():
        raise invalid("resume", "\"latest\" or a checkpoint folder (step-NNNNNN with state.pt "
                      "and lora.safetensors)", str(path))
    return path


def load(path) -> tuple:
    from safetensors.torch import load_file

    path = pathlib.Path(path)
    lora = load_file(str(path / "lora.safetensors"))
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    return lora, state
