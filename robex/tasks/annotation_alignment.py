"""AGG-Mean Table 2 (appendix A.3): cosine similarity between each explainer's heatmap (predicted
class) and the human annotation mask, per image; rows ``cosine_similarity`` (mean, se) with
``explainer`` = the method."""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.errors import RobexError
from robex.metrics.similarity import cosine_similarity
from robex.tasks.common import mean_se
from robex.utils import batches


class AnnotationAlignmentTask:
    def __init__(self, explainers, name: str = "annotation_alignment", batch_size: int = 8):
        self.name = name
        self.explainers = explainers  # {name: explainer config}
        self.batch_size = int(batch_size)

    def __call__(self, ctx) -> list[dict]:
        data = ctx.data()
        masks = data.extras.get("test_masks")
        if masks is None:
            raise RobexError(f"dataset {data.name} has no annotation masks: use dataset=mohseni_annotations")
        model = ctx.defended_model()
        rows = []
        for key, node in self.explainers.items():
            ex = instantiate(node)
            values = []
            for s in batches(len(data.test_x), self.batch_size):
                x = data.test_x[s].to(ctx.device)
                with torch.no_grad():
                    cls = model(x).argmax(1)
                values.append(cosine_similarity(ex(model, x, cls), masks[s].to(ctx.device)).cpu())
            m, se, n = mean_se(torch.cat(values))
            rows.append(ctx.row("cosine_similarity", m, se, n, explainer=ex.name, attack="none"))
        return rows
