"""The training videos: finding them and their captions, reading them with a real video
reader (imageio's ffmpeg plugin, or OpenCV: radial_attention._video), and cutting them to a bucket's frame count and resolution.

Captions come from a ``.txt`` beside each video (``clip.mp4`` -> ``clip.txt``) or from a
``metadata.csv`` (columns ``file_name``/``video`` and ``caption``/``text``/``prompt``) or
``metadata.jsonl`` (the same keys, one object a line) in the folder.
"""

import csv
import json
import pathlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import _video
from .._errors import invalid

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".m4v")
_FILE_KEYS = ("file_name", "video", "file", "path")
_CAPTION_KEYS = ("caption", "text", "prompt")


@dataclass(frozen=True)
class Clip:
    path: pathlib.Path
    caption: str


def _metadata_captions(folder: pathlib.Path) -> dict:
    """{resolved video path: caption} from metadata.csv / metadata.jsonl, if present."""
    rows = []
    csv_path, jsonl_path = folder / "metadata.csv", folder / "metadata.jsonl"
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows += [(csv_path, i + 2, row) for i, row in enumerate(csv.DictReader(f))]
    if jsonl_path.is_file():
        with open(jsonl_path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if line.strip():
                    try:
                        rows.append((jsonl_path, i + 1, json.loads(line)))
                    except json.JSONDecodeError as e:
                        raise invalid(f"{jsonl_path}:{i + 1}", "one JSON object a line",
                                      f"{e.msg}") from None
    captions = {}
    for source, line, row in rows:
        name = next((row[k] for k in _FILE_KEYS if row.get(k)), None)
        caption = next((row[k] for k in _CAPTION_KEYS if row.get(k) is not None), None)
        if name is None or caption is None:
            raise invalid(f"{source}:{line}", f"a video ({'/'.join(_FILE_KEYS)}) and a caption "
                          f"({'/'.join(_CAPTION_KEYS)})", sorted(row))
        captions[(folder / name).resolve()] = str(caption).strip()
    return captions


def find_clips(folder) -> list:
    """Every video under ``folder`` (recursively, sorted by path) with its caption."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise invalid("data", "a folder of videos", f"{folder} (not a folder)")
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise invalid("data", f"a folder holding videos ({', '.join(VIDEO_SUFFIXES)})",
                      f"none in {folder}")
    from_metadata = _metadata_captions(folder)
    clips = []
    for video in videos:
        text_file = video.with_suffix(".txt")
        if video.resolve() in from_metadata:
            caption = from_metadata[video.resolve()]
        elif text_file.is_file():
            caption = text_file.read_text(encoding="utf-8").strip()
        else:
            raise invalid(str(video), f"a caption ({text_file.name} beside it, or a row in "
                          f"{folder / 'metadata.csv'} or metadata.jsonl)", "none")
        if not caption:
            raise invalid(str(video), "a non-empty caption", "an empty one")
        clips.append(Clip(video, caption))
    return clips


def probe(path) -> tuple:
    """(frame count, height, width) of a video (see radial_attention._video)."""
    return _video.probe(path)


def read_frames(path, frames: int, stride: int = 1) -> np.ndarray:
    """The first ``frames`` frames (every ``stride``-th) of a video: uint8 [F, H, W, 3]."""
    return _video.read_frames(path, frames, stride)


def resize_crop(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 [F, H, W, 3] -> float [3, F, height, width] in [-1, 1]: scaled so that it
    covers the target (antialiased), then cropped at the centre."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # [F, 3, H, W]
    h, w = x.shape[-2:]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True,
                          align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    x = x[:, :, top:top + height, left:left + width]
    return (x / 127.5 - 1.0).clamp(-1, 1).permute(1, 0, 2, 3).contiguous()
