"""Server-sent event streams of the rollouts list and of one rollout's detailed view."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
