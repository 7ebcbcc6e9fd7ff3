"""Video files in and out: imageio's ffmpeg plugin when imageio-ffmpeg is installed, OpenCV
otherwise (machines that have cv2 but not the ~70 MB ffmpeg wheel, e.g. the lent GPU machines).

``RADIAL_VIDEO_BACKEND=imageio|opencv`` forces one of them (tests compare the two).
"""

import os

import numpy as np

from ._errors import invalid

BACKENDS = ("imageio", "opencv")


def _have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def backend() -> str:
    """The reader/writer in use: the forced one, else imageio-ffmpeg, else OpenCV."""
    forced = os.environ.get("RADIAL_VIDEO_BACKEND")
    if forced:
        if forced not in BACKENDS:
            raise invalid("RADIAL_VIDEO_BACKEND", " or ".join(BACKENDS), repr(forced))
        needs = {"imageio": ("imageio", "imageio_ffmpeg"), "opencv": ("cv2",)}[forced]
        missing = [m for m in needs if not _have(m)]
        if missing:
            raise invalid("RADIAL_VIDEO_BACKEND", f"a backend whose modules are installed",
                          f"{forced!r} (missing {', '.join(missing)})")
        return forced
    if _have("imageio") and _have("imageio_ffmpeg"):
        return "imageio"
    if _have("cv2"):
        return "opencv"
    raise invalid("video reader", "imageio with imageio-ffmpeg, or OpenCV (pip install "
                  "imageio imageio-ffmpeg, or opencv-python-headless)", "neither installed")


def _open_cv(path):
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise invalid(str(path), "a video OpenCV can read", "a file it cannot open")
    return capture


def _frames(path):
    """Yields the frames of a video as uint8 [H, W, 3] RGB."""
    if backend() == "imageio":
        import imageio.v2 as imageio

        try:
            reader = imageio.get_reader(str(path), format="ffmpeg")
        except Exception as e:  # imageio raises several types for unreadable files
            raise invalid(str(path), "a video ffmpeg can read", f"{type(e).__name__}: {e}") from None
        with reader:
            for frame in reader:
                yield np.asarray(frame)[..., :3]
        return
    import cv2

    capture = _open_cv(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def probe(path) -> tuple:
    """(frame count, height, width) of a video, found by decoding it: container frame counts
    are often missing or wrong."""
    if backend() == "imageio":
        import imageio.v2 as imageio

        try:
            reader = imageio.get_reader(str(path), format="ffmpeg")
        except Exception as e:
            raise invalid(str(path), "a video ffmpeg can read", f"{type(e).__name__}: {e}") from None
        with reader:
            width, height = reader.get_meta_data()["size"]
            return reader.count_frames(), height, width
    count, size = 0, None
    for frame in _frames(path):
        size = frame.shape[:2]
        count += 1
    if size is None:
        raise invalid(str(path), "a video with at least one frame", "no decodable frames")
    return count, size[0], size[1]


def read_frames(path, frames: int, stride: int = 1) -> np.ndarray:
    """The first ``frames`` frames (every ``stride``-th) of a video: uint8 [F, H, W, 3]."""
    needed = (frames - 1) * stride + 1
    out, seen = [], 0
    for frame in _frames(path):
        if seen % stride == 0:
            out.append(frame)
        seen += 1
        if seen >= needed:
            break
    if seen < needed:
        raise invalid(str(path), f"at least {needed} frames" + (f" ({frames} taken every {stride})"
                      if stride > 1 else ""), f"{seen} frames")
    return np.stack(out)


def write_video(frames, path, fps) -> str:
    """Writes frames (float [F, H, W, 3] in 0..1, or uint8) as MP4 (H.264 through
    imageio-ffmpeg, MPEG-4 part 2 through OpenCV); with neither installed, as PNG files in a
    folder beside ``path``. Returns what was written."""
    frames8 = [np.asarray(f) for f in frames]
    frames8 = [(np.clip(f, 0, 1) * 255).round().astype(np.uint8) if f.dtype != np.uint8 else f
               for f in frames8]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        chosen = backend()
    except Exception:
        chosen = None
    if chosen == "imageio":
        import imageio

        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
            for f in frames8:
                writer.append_data(f)
        return path
    if chosen == "opencv":
        import cv2

        h, w = frames8[0].shape[:2]
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if writer.isOpened():
            for f in frames8:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            writer.release()
            if os.path.getsize(path) > 0:
                return path
    from PIL import Image

    folder = os.path.splitext(path)[0] + "_frames"
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames8):
        Image.fromarray(f).save(os.path.join(folder, f"frame_{i:04d}.png"))
    return folder
