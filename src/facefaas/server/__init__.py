"""The facefaas HTTP service: :func:`create_app` builds it from a ``Settings``.

Importing this package needs the ``server`` extra (FastAPI, uvicorn, SQLAlchemy, ...).
"""

from facefaas.server.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
