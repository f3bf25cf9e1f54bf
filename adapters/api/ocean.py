"""Ocean CD-compatible routes, for scripts migrating from Ocean CD."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
