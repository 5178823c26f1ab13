"""The local web app (``llm4ms serve``): FastAPI JSON API + one offline page in ``static/``."""
from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """See `llm4ms.web.app.create_app` (imported lazily so `import llm4ms.web` needs no fastapi)."""
    from llm4ms.web.app import create_app as _create_app

    return _create_app(*args, **kwargs)
