"""Model registries: where a passing candidate is registered and where the baseline comes from.

Every backend satisfies :class:`gates.registry.base.RegistryBackend`; :func:`open_backend` is the
one place that constructs them, so the MLflow client is imported only when a policy asks for it.
"""
from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from gates.errors import UserError, missing_extra
from gates.registry.base import RegistryBackend

BACKENDS = ("local", "mlflow")
MSG_UNKNOWN_BACKEND = "unknown registry backend {backend!r}: expected one of " + ", ".join(BACKENDS)
MSG_EMPTY_URI = "the registry location is empty: set registry.uri or pass --registry"

__all__ = ["BACKENDS", "RegistryBackend", "open_backend"]


def open_backend(backend: str, uri: str) -> RegistryBackend:
    """Return the backend ``backend`` (``local`` or ``mlflow``) at ``uri``.

    ``local`` takes a folder path; ``mlflow`` a tracking URI. Nothing is created until the
    first write.
    """
    if not str(uri).strip():
        raise UserError(MSG_EMPTY_URI)
    if backend == "local":
        from gates.registry.local import LocalRegistry

        return LocalRegistry(uri)
    if backend == "mlflow":
        if find_spec("mlflow") is None:
            raise missing_extra("mlflow", "the mlflow registry backend")
        module = import_module("gates.registry.mlflow_backend")
        backend_object: RegistryBackend = module.MlflowRegistry(uri)
        return backend_object
    raise UserError(MSG_UNKNOWN_BACKEND.format(backend=backend))
