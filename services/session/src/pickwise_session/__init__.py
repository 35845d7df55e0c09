"""Pickwise session: Session memory and user features (read side)."""
