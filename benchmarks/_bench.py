"""Small helpers shared by the benchmark scripts (run as `python benchmarks/<script>.py`)."""
from __future__ import annotations


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; NaN where the kernel has no /proc)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
