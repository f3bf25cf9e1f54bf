"""The native routes under /api/v1/namespaces/{ns}/...: rollouts, actions, history, specs and the
external verification answer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
