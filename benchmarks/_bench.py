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


def add_ranked_library_args(parser, n_queries: int = 300) -> None:
    """--library, --queries, --n-queries, --threads, --name: what the benchmarks of a library's ranking take."""
    parser.add_argument("--library", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--n-queries", type=int, default=n_queries)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name")


def run_header(args, library, queries, **more) -> dict:
    """What every library benchmark's result file starts with: the command, the library (a portable path), its size,
    the queries and threads used; `more` after them."""
    import sys

    from llm4ms.data.shared import portable_path

    return {"command": " ".join(sys.argv), "library": portable_path(args.library), "library_spectra": len(library),
            "queries": len(queries), "threads": args.threads, **more}


def load_ranked_library(args):
    """(library, queries, their InChIKey first blocks or None, the model's ranking), with FAISS and torch on
    ``args.threads``; a ranking that retrieves nothing by a classic score is one clear error."""
    import faiss
    import torch

    from llm4ms.errors import ConfigError
    from llm4ms.io import read_spectra
    from llm4ms.library import Library
    from llm4ms.ranking import model_ranking

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    library = Library.load(args.library)
    queries = list(read_spectra(args.queries))[: args.n_queries]
    keys = [(q.get("inchikey") or "")[:14] or None for q in queries]
    ranking = model_ranking(library.encoder())
    if not ranking.classic_retrieval:
        raise ConfigError("the library's model ranking does not retrieve by a classic score: nothing to compare")
    return library, queries, keys, ranking


def recall_at(hits, keys, cut: int) -> float:
    """Recall@cut (%) of the true compound (InChIKey first block) over queries with a key."""
    found = [k is not None and any((h.inchikey or "")[:14] == k for h in row[:cut]) for row, k in zip(hits, keys)]
    return 100.0 * sum(found) / max(1, sum(k is not None for k in keys))


def parse_rows(text: str, width: int, option: str, what: str) -> list[tuple[int, ...]]:
    """``A:B[:C],...`` -> tuples of `width` non-negative integers, the first two positive (depth settings); else
    one clear error naming `option` and `what` its rows hold."""
    from llm4ms.errors import ConfigError

    try:
        rows = [tuple(int(x) for x in part.split(":")) for part in text.split(",")]
        assert all(len(r) == width and min(r[:2]) >= 1 and min(r) >= 0 for r in rows)
    except (ValueError, AssertionError):
        raise ConfigError(f"{option} must be comma-separated {what}, not {text!r}") from None
    return rows
