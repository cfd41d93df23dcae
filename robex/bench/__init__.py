"""Yardsticks for `make bench`: re-implementations of the papers' reference procedures."""
