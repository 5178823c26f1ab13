"""`llm4ms serve`: the local web app (search page + JSON API) on 127.0.0.1."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the local web app (search page and JSON API)",
                       description="Serve a search page and a JSON API for a library; works fully offline. "
                                   "API endpoints are listed at /docs.")
    p.add_argument("--library", help="library folder (default: the bundled library)")
    p.add_argument("--model", help="model folder, Hub id, or a bundled model (ei, msms) (default: the model the library was built with)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: only this machine can connect)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body accepted")
    p.add_argument("--max-spectra", type=int, default=500, help="most query spectra per search")
    p.add_argument("--max-k", type=int, default=100, help="most hits per query")
    p.add_argument("--max-unpacked-mb", type=float,
                   help="most megabytes the uploads of one search may unpack to (.gz) "
                        "(default: 4 x --max-upload-mb)")
    p.add_argument("--trust-library-model", action="store_true",
                   help="load the model the library's manifest names even when it is not a local folder "
                        "(a Hugging Face Hub id, downloaded when online); without it such a library needs --model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import open_library
    from llm4ms.errors import ConfigError
    from llm4ms.web import create_app

    if args.max_upload_mb <= 0 or args.max_spectra < 1 or args.max_k < 1 or (
            args.max_unpacked_mb is not None and args.max_unpacked_mb <= 0):
        raise ConfigError("--max-upload-mb, --max-unpacked-mb, --max-spectra and --max-k must be positive")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535 (got {args.port})")
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the web app needs fastapi and uvicorn: pip install 'llm4ms[web]'") from None
    library, encoder = open_library(args.library, args.model)
    if args.trust_library_model:
        library.trust_model = True
    app = create_app(library, encoder, max_upload_mb=args.max_upload_mb, max_spectra=args.max_spectra,
                     max_k=args.max_k, max_unpacked_mb=args.max_unpacked_mb)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}: other machines can reach this server (no authentication)",
              file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"llm4ms: serving {len(library)} library spectra at http://{shown}:{args.port}/ "
          f"(API docs at /docs; Ctrl+C to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
