"""Small helpers for the command lines of hand_tracker_training."""
from __future__ import annotations

from typing import Optional


def split_list(text: Optional[str]) -> Optional[list[str]]:
    """``'a, b,,c'`` -> ``['a', 'b', 'c']`` (items stripped, empty ones dropped); None for an
    empty or missing text."""
    items = [item.strip() for item in (text or '').split(',')]
    return [item for item in items if item] or None
