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


def write_results(out_dir, stem: str, data: dict, table: str, footer: str):
    """`<stem>.json` (the data) and `<stem>.md` (the table, then `footer`) under `out_dir`, each written atomically
    so an interrupted run never leaves half a result beside a whole one; returns the JSON path."""
    from pathlib import Path

    from llm4ms.utils import atomic_open, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"{stem}.json", data)
    with atomic_open(out_dir / f"{stem}.md", "w", encoding="utf-8") as handle:
        handle.write(table.rstrip("\n") + "\n\n" + footer.rstrip("\n") + "\n")
    print(f"wrote {out_dir / f'{stem}.json'}")
    return out_dir / f"{stem}.json"


def run_main(main, script: str) -> None:
    """Exit with main()'s code; bad input (an `Llm4msError`) is one line naming the script, no traceback."""
    import sys

    from llm4ms.errors import Llm4msError

    try:
        sys.exit(main())
    except Llm4msError as err:
        print(f"{script}: error: {err}", file=sys.stderr)
        sys.exit(2)
