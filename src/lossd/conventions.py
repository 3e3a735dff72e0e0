"""Conventions every layer shares (docs/design.md, Conventions)."""

__all__ = ["IGNORE_INDEX"]

IGNORE_INDEX = 255
"""Ignore value of every prepared mask, loss and metric (docs/design.md, Conventions)."""
