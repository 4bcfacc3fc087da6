"""The JSON API over ratings and aggregates (to come)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["ratings"])
