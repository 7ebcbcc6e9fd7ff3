"""The latent cache that ``prepare`` writes and ``fit`` reads: a folder with ``cache.json``
(what model made it, and one entry per clip) and one safetensors file per clip holding its
normalised VAE latents and its text conditioning. Files are written atomically (a temporary
name, then a rename), so an interrupted prepare never leaves a half-written sample behind.
"""

import json
import os
import pathlib
import random

import torch

from .._errors import invalid

MANIFEST = "cache.json"
FORMAT = "radial-train-cache"
VERSION = 1


def atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save_tensors(tensors: dict, path: pathlib.Path, metadata=None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))


def write_manifest(folder: pathlib.Path, manifest: dict) -> None:
    atomic_write_bytes(pathlib.Path(folder) / MANIFEST,
                       (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


def read_manifest(folder) -> dict:
    folder = pathlib.Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise invalid("cache", f"a folder written by `radial-train prepare` (with {MANIFEST})",
                      f"{folder}" + (" (no such folder)" if not folder.is_dir() else f" without {MANIFEST}"))
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise invalid(str(path), "a JSON manifest", f"unreadable JSON ({e.msg})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise invalid(str(path), f"format {FORMAT} version {VERSION}",
                      f"{manifest.get('format')} version {manifest.get('version')}")
    if not manifest.get("samples"):
        raise invalid(str(path), "at least one sample", "none")
    return manifest


def check_model(manifest: dict, cache_folder, expected: dict, model="this model") -> None:
    """The cache must have been made for the transformer about to train on it."""
    made_for = manifest["fingerprint"]
    if made_for != expected:
        diff = ", ".join(f"{k} {made_for.get(k)!r} (model: {expected.get(k)!r})"
                         for k in sorted(set(made_for) | set(expected)) if made_for.get(k) != expected.get(k))
        raise invalid(str(pathlib.Path(cache_folder) / MANIFEST),
                      f"a cache made for {model} ({expected})",
                      f"one made for {manifest.get('model')}: {diff}")


class LatentCache:
    """The samples of a cache, grouped into buckets of equal latent shape."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.manifest = read_manifest(self.folder)
        self.samples = self.manifest["samples"]
        self.buckets = {}
        for i, s in enumerate(self.samples):
            self.buckets.setdefault(tuple(s["latent_shape"]), []).append(i)

    def __len__(self):
        return len(self.samples)

    def load(self, index: int) -> dict:
        from safetensors.torch import load_file

        path = self.folder / self.samples[index]["file"]
        if not path.is_file():
            raise invalid(str(path), f"the sample file listed in {self.folder / MANIFEST}", "no such file")
        return load_file(str(path))

    def collate(self, indices) -> dict:
        """One batch: latents stacked; text embeddings zero-padded to the longest."""
        items = [self.load(i) for i in indices]
        batch = {"latents": torch.stack([it["latents"].float() for it in items])}
        embeds = [it["prompt_embeds"].float() for it in items]
        longest = max(e.shape[0] for e in embeds)
        padded = embeds[0].new_zeros(len(embeds), longest, embeds[0].shape[-1])
        for j, e in enumerate(embeds):
            padded[j, : e.shape[0]] = e
        batch["prompt_embeds"] = padded
        if "prompt_attention_mask" in items[0]:
            batch["prompt_attention_mask"] = torch.stack([it["prompt_attention_mask"] for it in items])
            batch["pooled_prompt_embeds"] = torch.stack([it["pooled_prompt_embeds"].float() for it in items])
        batch["index"] = torch.tensor(list(indices))
        return batch


def epoch_batches(cache: LatentCache, global_batch: int, seed: int, epoch: int) -> list:
    """The global batches of one epoch, each from one bucket: every bucket shuffled, cut into
    batches (an incomplete last batch is dropped, so every rank gets a full share), and the
    batches shuffled. The same for every rank and every run with this seed and epoch."""
    rng = random.Random(f"{seed}/{epoch}")
    batches = []
    for shape in sorted(cache.buckets):
        members = list(cache.buckets[shape])
        rng.shuffle(members)
        batches += [members[i:i + global_batch] for i in range(0, len(members) - global_batch + 1, global_batch)]
    rng.shuffle(batches)
    if not batches:
        sizes = {f"{list(k)}": len(v) for k, v in sorted(cache.buckets.items())}
        raise invalid("batch_size", f"at most the clips of one bucket (buckets by latent shape: {sizes}) "
                      "times the processes", f"a global batch of {global_batch}")
    return batches
