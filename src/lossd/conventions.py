"""Conventions every layer shares (design.md, Conventions)."""

__all__ = ["IGNORE_INDEX"]

IGNORE_INDEX = 255
"""Ignore value of every prepared mask, loss and metric (design.md, Conventions)."""
