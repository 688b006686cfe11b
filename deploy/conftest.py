"""Fixtures of the deploy/ checks (helpers: deploylib.py)."""

from __future__ import annotations

from typing import Any

import pytest
from deploylib import RENDERED, render_any


@pytest.fixture(scope="module", params=RENDERED)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, documents) of each kustomization (kubectl, required under CI) and of each
    values file of the Helm chart's matrix (helm, required under CI)."""
    return request.param, render_any(request.param)
