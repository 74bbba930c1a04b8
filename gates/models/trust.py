"""What a policy trusts when it loads a model: skops types it lists, and pickles when it says so.

A registry, an MLflow MLmodel file or a model's own metadata never add to it.
"""
from __future__ import annotations

from dataclasses import dataclass

MSG_PICKLE = (
    "'{path}' is a pickle file, which can run arbitrary code when loaded; save the model with "
    "skops (.skops) or set model.trust_pickle: true if you trust its origin"
)


@dataclass(frozen=True)
class Trust:
    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()


def pickle_refused(name: str) -> str:
    """Return the message refusing a pickle-based model without ``trust_pickle``."""
    return MSG_PICKLE.format(path=name)
