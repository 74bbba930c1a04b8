"""Stand-in GitHub and GitLab APIs on 127.0.0.1 for the publisher tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contracts.stand_in import StandIn, serve


@pytest.fixture
def github_api() -> Iterator[StandIn]:
    yield from serve("github")


@pytest.fixture
def gitlab_api() -> Iterator[StandIn]:
    yield from serve("gitlab")
