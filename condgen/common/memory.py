"""Sizes that cannot fit are refused up front, with the memory they would need.

A run asked for a billion hidden units or a hundred million samples would otherwise grow
until the operating system kills it. :func:`check_fits` compares what a step needs with the
memory the system reports available (Linux's ``MemAvailable``), and raises a
:class:`ResourceError` saying how much it needs and what to make smaller.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ResourceError

BYTES_PER_FLOAT = 4


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):  # absent, or "max" (no limit)
        return None


def available_bytes() -> int | None:
    """Memory this process can have without swapping or being killed, or None where that is unknown: the
    least of the system's available memory (Linux's ``MemAvailable``), the container's (cgroup v2 or v1)
    room, and the address-space limit (``ulimit -v``)."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes a huge number for "none"
            limits.append(max(limit - usage, 0))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:  # a limit on the whole address space: less what is mapped already
            mapped = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                          if line.startswith("VmSize:"))
            limits.append(max(soft - mapped, 0))
    except (ImportError, OSError, ValueError, IndexError, StopIteration):
        pass
    return min(limits) if limits else None


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
