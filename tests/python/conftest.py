import os
import pathlib
import sys

import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))  # tiny_models, reference


@pytest.fixture
def seed(request):
    """A fresh seed per test (printed, and settable with RADIAL_TEST_SEED to replay)."""
    value = int(os.environ.get("RADIAL_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    print(f"{request.node.name}: RADIAL_TEST_SEED={value}")
    return value


@pytest.fixture
def poisoned(monkeypatch):
    """Outputs of the op start as NaN, so an element the library skipped fails the test."""
    import radial_attention.ops as ops

    def nan_filled(shape, dtype, device):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)

    monkeypatch.setattr(ops, "_new_output", nan_filled)


def golden_dir():
    env = os.environ.get("RADIAL_GOLDEN_DIR")
    path = pathlib.Path(env) if env else REPO / "tests" / "golden"
    return path if path.is_dir() else None


def cli_path():
    env = os.environ.get("RADIAL_CLI")
    if env:
        return env
    for build in sorted(REPO.glob("build*/tools/radial/radial")):
        if os.access(build, os.X_OK):
            return str(build)
    return None
