"""Small helpers shared by the command lines of hand_tracker_training."""
from __future__ import annotations

from typing import Optional


def split_list(text: Optional[str]) -> Optional[list[str]]:
    """
    Split a comma-separated option into its non-empty, stripped items.

    ``None`` or ``''`` (the option not given, or given empty) is ``None``, which the dataset
    readers read as "all"; ``'a, b,'`` is ``['a', 'b']``.
    """
    if not text:
        return None
    return [item.strip() for item in text.split(',') if item.strip()] or None
