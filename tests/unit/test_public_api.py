"""The public Python API is exactly what ``zerodown.__all__`` says, and all of it imports."""

from __future__ import annotations

import zerodown

EXPECTED = {
    "InputError",
    "LoadedSpec",
    "LockHeldError",
    "NotFoundError",
    "OperationFailedError",
    "PreflightError",
    "RefusedError",
    "RolledBackError",
    "ServiceSpec",
    "SpecError",
    "TemporaryError",
    "Zerodown",
    "ZerodownError",
    "__version__",
    "load_spec",
    "parse_spec",
}


def test_all_is_pinned() -> None:
    """A change to the public API is a deliberate edit of this list."""
    assert set(zerodown.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in zerodown.__all__:
        assert getattr(zerodown, name) is not None
