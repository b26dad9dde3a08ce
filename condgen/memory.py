"""Sizes that cannot fit are refused up front, with the memory they would need.

A run asked for a billion hidden units or a hundred million samples would otherwise grow
until the operating system kills it. :func:`check_fits` compares what a step needs with the
memory the system reports available (Linux's ``MemAvailable``), and raises a
:class:`ResourceError` saying how much it needs and what to make smaller.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CondgenError

BYTES_PER_FLOAT = 4


class ResourceError(CondgenError):
    """A size the user asked for needs more memory (or disk) than there is."""


def available_bytes() -> int | None:
    """Memory the system can give this process without swapping, or None where that is unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def format_bytes(n: float) -> str:
    if n >= 2**60:  # beyond any machine; and too large for a float when num is, say, 10**400
        return f"about 2^{int(n).bit_length() - 1} bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_fits(need: int, what: str, advice: str, available: int | None = None) -> None:
    """ResourceError if ``need`` bytes exceed the available memory: ``{what} needs 313.6 GiB, ...; {advice}``."""
    available = available_bytes() if available is None else available
    if available is not None and need > available:
        raise ResourceError(f"{what} needs {format_bytes(need)} of memory, but {format_bytes(available)} is "
                            f"available; {advice}")
