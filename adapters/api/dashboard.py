"""The dashboard: a self-contained web page (no CDN) served by the API process."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
