"""Perturbation models (robex/threats): StAdv's flow, the additive delta and composites, checked
against their definitions, and the map attack driving them (robex/attacks/targeted_map.py)."""
import itertools
import math

import pytest
import torch

from robex.attacks.targeted_map import TargetedMapAttack
from robex.errors import RobexError
from robex.explainers.gradient import Gradient
from robex.threats import UNCONSTRAINED
from robex.threats.composite import Composite
from robex.threats.delta import Delta
from robex.threats.flow import Flow, flow_smoothness


def test_a_zero_flow_is_the_identity_and_one_pixel_of_flow_reads_the_neighbour():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 8)
    flow = Flow(budget=1.0)
    (f,) = flow.init(x)
    torch.testing.assert_close(flow.apply(x, [f]), x, atol=1e-6, rtol=0)
    # grid_sample coordinates span 2 over the width: 2 / W is one pixel; +x reads the right neighbour
    f = torch.zeros_like(f)
    f[..., 0] = 2.0 / 8
    out = flow.apply(x, [f])
    torch.testing.assert_close(out[..., :-1], x[..., 1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., -1], x[..., -1], atol=1e-6, rtol=0)  # border padding
    f = torch.zeros_like(f)
    f[..., 1] = -2.0 / 6  # -y reads the pixel above
    torch.testing.assert_close(flow.apply(x, [f])[..., 1:, :], x[..., :-1, :], atol=1e-6, rtol=0)


def test_flow_smoothness_is_xiao_et_al_eq_4_summed_over_every_pixel_and_its_4_neighbours():
    torch.manual_seed(1)
    f = torch.randn(2, 4, 5, 2, dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    for b, i, j in itertools.product(range(2), range(4), range(5)):
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            q = (i + di, j + dj)
            if 0 <= q[0] < 4 and 0 <= q[1] < 5:
                expected[b] += math.sqrt(float(((f[b, i, j] - f[b, q[0], q[1]]) ** 2).sum()) + 1e-10)
    torch.testing.assert_close(flow_smoothness(f), expected)
    torch.testing.assert_close(Flow(smoothness=0.05).penalty([f]), 0.05 * expected)
    const = torch.full((1, 4, 5, 2), 0.3, dtype=torch.float64)  # a translation is perfectly smooth
    assert flow_smoothness(const).item() < 1e-3


def test_a_composite_applies_its_parts_in_order_and_projects_each_onto_its_own_budget():
    torch.manual_seed(2)
    x = torch.rand(3, 1, 6, 6)
    flow, delta = Flow(budget=0.05, lr=0.01), Delta(budget=0.1)
    both = Composite([flow, delta])
    params = both.init(x)
    assert [p.shape for p in params] == [(3, 6, 6, 2), (3, 1, 6, 6)]
    f, d = torch.randn(3, 6, 6, 2), torch.randn(3, 1, 6, 6)
    f_c, d_c = both.constrain([f, d], x)
    assert f_c.abs().max() <= 0.05 and d_c.abs().max() <= 0.1
    torch.testing.assert_close(both.apply(x, [f_c, d_c]), (flow.apply(x, [f_c]) + d_c).clamp(0, 1))
    assert both.lrs == [0.01, None]
    cols = both.columns()
    assert (cols["threat"], cols["units"]) == ("flow:0.05+linf:0.1", "grid+pixel") and math.isnan(cols["budget"])
    with pytest.raises(RobexError, match="perturbation models"):
        Composite([])


def test_the_image_space_threat_is_the_identity_parameterisation():
    x = torch.rand(2, 1, 4, 4)
    (p,) = UNCONSTRAINED.init(x)
    assert torch.equal(UNCONSTRAINED.apply(x, [p]), x)
    (q,) = UNCONSTRAINED.constrain([x * 3 - 1], x)
    assert q.min() >= 0 and q.max() <= 1


@pytest.mark.parametrize("perturbation", ["flow", "flow+delta"])
def test_the_map_attack_moves_the_map_through_a_flow_and_stays_inside_the_model(perturbation, digits,
                                                                                relu_digits_model):
    model, ex = relu_digits_model, Gradient()
    x, x_t = digits.test_x[:8], digits.test_x[8:16]
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    h_t = ex(model, x_t, cls_t)
    flow = Flow(budget=0.3, smoothness=0.0, lr=0.02)  # 8x8 images: 0.3 is about one pixel
    model_ = flow if perturbation == "flow" else Composite([flow, Delta(budget=0.05, lr=5e-3)])
    # the output term lighter than Dombrowski's 1e6 so that 40 steps on 8x8 digits show the move
    attack = TargetedMapAttack(iterations=40, lr=5e-3, batch_size=4, show_progress=False, w_out=1e4,
                               perturbation=model_)
    res = attack(model, ex, x, cls, h_target=h_t)
    before, after = -res.facts["objective_before"], -res.facts["objective_after"]
    assert after.mean() < 0.9 * before.mean()  # the attack moved the map towards the target (0.75 seen)
    assert res.facts["label_kept"].float().mean() >= 0.75
    lo, hi = x.flatten(1).amin(1), x.flatten(1).amax(1)
    slack = 0.0 if perturbation == "flow" else 0.05
    # a flow only resamples: every pixel is a convex combination of the image's own pixels
    assert bool((res.x_adv.flatten(1).amin(1) >= lo - slack - 1e-6).all())
    assert bool((res.x_adv.flatten(1).amax(1) <= hi + slack + 1e-6).all())
    assert res.facts["linf"].max() > 0.01
    assert attack.threat.columns()["threat"] == ("flow" if perturbation == "flow" else "flow:0.3+linf:0.05")


def test_the_map_attack_refuses_what_is_not_a_perturbation_model():
    with pytest.raises(RobexError, match="perturbation model"):
        TargetedMapAttack(perturbation="flow")
    with pytest.raises(RobexError, match="clamp_low"):
        TargetedMapAttack(clamp_low=-1.0)


def test_a_composite_attack_runs_from_the_command_line_and_every_row_records_its_parts(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "run.py", "dataset=digits", "model=vgg_small", "model.image_size=8",
                        "task=map_manipulation", "attack=expl_delta_stadv", "explainer=gradient", "debug=tiny",
                        f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"],
                       cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert set(rows["threat"]) == {"flow:0.05+linf:0.0313725"} and set(rows["units"]) == {"grid+pixel"}
    assert rows["budget"].isna().all() and set(rows["attacked_explainer"]) == {"gradient"}
    assert rows.loc[rows.metric == "linf", "value"].gt(0).all()  # the image moved
