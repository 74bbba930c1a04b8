"""Fixtures of the registry tests: a backend per entry of ``BACKENDS`` and small model files."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gates.registry.base import RegistryBackend
from tests.gates.registry.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RegistryBackend]:
    """Return a function opening (again) the same registry of the parametrised backend."""
    opened: list[RegistryBackend] = []
    factory = BACKENDS[request.param]

    def open_again() -> RegistryBackend:
        backend = factory(tmp_path / "store")
        opened.append(backend)
        return backend

    (tmp_path / "store").mkdir()
    yield open_again
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(reopen: Callable[[], RegistryBackend]) -> RegistryBackend:
    return reopen()


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[[bytes, str], Path]:
    """Return a function writing ``content`` to a fresh model file with the given suffix."""
    counter = iter(range(10**6))

    def write(content: bytes, suffix: str = ".skops") -> Path:
        path = tmp_path / "models" / f"m{next(counter)}{suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        return path

    return write
