"""The CUDA path (marked gpu: skipped by make test and wherever there is no GPU; run with
`pytest -m gpu` on a GPU machine): one tiny job per paper on CUDA gives the rows the CPU gives, and
a checkpoint trained on the GPU is saved device-neutral (loads with no GPU)."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

# one preset per paper, each at debug=tiny (the bounded similarity metrics compared)
JOBS = {"atex": ["paper=atex_tab1", "hydra.mode=RUN", "defense=atex", "threat.budget=0.04"],
        "aggmean": ["paper=aggmean_tab1", "hydra.mode=RUN", "explainer=agg_mean"],
        "smoothed": ["paper=smoothed_tab2", "hydra.mode=RUN", "explainer=smoothgrad_abs"],
        "relex": ["paper=relex_tab1", "hydra.mode=RUN", "explainer=relex", "threat.budget=0.3"]}
BOUNDED = ("spearman", "topk", "gini", "retrieval_adv_adv", "relevance", "pcc_delta", "accuracy")


def _job(args, device, tmp):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "run.py", *args, "debug=tiny", "progress=false", f"device={device}",
                        f"paths.cache_dir={tmp}/cache_{device}", f"hydra.run.dir={tmp}/run_{device}"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return pd.read_csv(tmp / f"run_{device}" / "metrics.csv")


@pytest.mark.parametrize("paper", sorted(JOBS))
def test_one_job_per_paper_runs_on_cuda_and_agrees_with_the_cpu(tmp_path, paper):
    gpu, cpu = _job(JOBS[paper], "cuda", tmp_path), _job(JOBS[paper], "cpu", tmp_path)
    assert sorted(gpu["metric"]) == sorted(cpu["metric"])
    key = ["metric", "metric_params", "step", "explainer", "defense", "budget"]
    both = gpu.merge(cpu, on=[k for k in key if k in gpu.columns], suffixes=("_gpu", "_cpu"))
    bounded = both[both["metric"].isin(BOUNDED)]
    assert len(bounded) and bounded["value_gpu"].notna().all()
    # a tiny job on 16 images: float order differs between devices, so agreement to 0.1, not bits
    assert ((bounded["value_gpu"] - bounded["value_cpu"]).abs() < 0.1).all(), bounded[["metric", "value_gpu", "value_cpu"]]


def test_a_checkpoint_saved_from_the_gpu_is_device_neutral(tmp_path):
    from robex.cache import Cache

    net = torch.nn.Linear(3, 2).cuda()
    Cache(tmp_path).save_state("models", "k", {"state_dict": net.state_dict()})
    raw = torch.load(tmp_path / "models" / "k.pt", weights_only=True)  # no map_location
    assert all(t.device.type == "cpu" for t in raw["state_dict"].values())
