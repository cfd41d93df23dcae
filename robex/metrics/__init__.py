"""Batched similarity metrics between maps (one value per sample)."""
