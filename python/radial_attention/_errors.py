"""The package's exception types: bad input is a ValueError, so callers can catch it plainly."""


class RadialError(ValueError):
    """Bad input, as the library reports it: "radial: ARGUMENT: expected ..., got ...".

    ``argument`` names the offending argument (e.g. ``"q.dtype"`` or ``"block_size"``).
    """

    def __init__(self, message: str, argument: str = ""):
        super().__init__(message)
        self.argument = argument


class RadialRuntimeError(RuntimeError):
    """A failure that is not the caller's input (e.g. a CUDA error inside the library)."""


def invalid(argument: str, expected: str, got) -> RadialError:
    """A RadialError worded like the C++ library's radial::Error."""
    return RadialError(f"radial: {argument}: expected {expected}, got {got}", argument)
