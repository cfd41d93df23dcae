"""No defense: the trained model as it is (the ATEX tables' softplus baseline, "[8]")."""


class NoDefense:
    stages = 0
    budget = float("nan")

    def __init__(self, name: str = "none"):
        self.name = name

    def apply_stage(self, stage, teacher, model, data):  # pragma: no cover - never called
        raise AssertionError("NoDefense has no stages")
