"""Attacks on explanations (and on predictions). Each attack is an object built from its config
and called as ``attack(model, explainer, x, target) -> AttackResult``."""
from robex.attacks.base import AttackResult

__all__ = ["AttackResult"]
