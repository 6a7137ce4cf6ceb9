"""zerodown: zero-downtime deployments and day-2 operations.

The public Python API is what this module exports; ``tests/unit/test_public_api.py`` pins it.
"""

from zerodown.core.errors import (
    InputError,
    LockHeldError,
    NotFoundError,
    OperationFailedError,
    PreflightError,
    RefusedError,
    RolledBackError,
    SpecError,
    TemporaryError,
    ZerodownError,
)

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "LockHeldError",
    "NotFoundError",
    "OperationFailedError",
    "PreflightError",
    "RefusedError",
    "RolledBackError",
    "SpecError",
    "TemporaryError",
    "ZerodownError",
    "__version__",
]
