"""What every CLI command shares: exit codes, the usage error, and how the CLI talks to the terminal."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: reported with exit code 2."""


def say(message: str = "") -> None:
    """The CLI's own output (a terminal program is allowed to talk)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def utc_today() -> date:
    return datetime.now(UTC).date()


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"


def as_json(obj: object) -> str:
    return json.dumps(obj, indent=2, default=str)
