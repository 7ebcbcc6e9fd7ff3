"""radial_attention.generate with its radial attention failing on rank 1 (run by torchrun in
test_generate_ulysses.py): the other ranks must stop with that error, not wait for rank 1."""

import os
import sys

import radial_attention.parallel as parallel
from radial_attention import generate

if int(os.environ.get("RANK", "0")) == 1:
    def failing(*args, **kwargs):
        raise RuntimeError("injected failure on rank 1")

    parallel.ulysses_apply = failing

if __name__ == "__main__":
    sys.exit(generate.main())
