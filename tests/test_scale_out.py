"""Sweeps on other launchers (joblib, submitit) and a cache shared by jobs running at once: the
launchers give the basic launcher's tables byte for byte, concurrent jobs train a shared model once,
a job killed while holding a cache lock blocks nobody, and bad launcher settings are one line."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from robex.cache import Cache

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    # one thread per process everywhere: a float sum's last bits depend on the thread count, and
    # joblib gives its workers cores / n_jobs threads, so tables compare at equal thread counts
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


# -- the cache lock ----------------------------------------------------------------------------------
_HOLDER = """
import sys, time
from robex.cache import Cache
with Cache(sys.argv[1]).lock("models", "k"):
    print("held", flush=True)
    time.sleep(120)
"""


def _start_holder(root):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_makes_others_wait_and_a_killed_holder_blocks_nobody(tmp_path):
    from filelock import FileLock, Timeout

    holder = _start_holder(tmp_path)
    lock_file = tmp_path / "locks" / "models-k.lock"
    try:
        with pytest.raises(Timeout):  # held by the other process: a second job waits
            FileLock(str(lock_file)).acquire(timeout=0.3)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_file.exists()  # the file stays behind, but the OS released the lock with the process
    t0 = time.perf_counter()
    with Cache(tmp_path).lock("models", "k"):
        pass
    assert time.perf_counter() - t0 < 5


def test_a_disabled_cache_takes_no_lock(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        with Cache(tmp_path, enabled=False).lock("models", "k"):  # would wait 120 s if it locked
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


@pytest.mark.slow
def test_concurrent_jobs_train_a_shared_model_once_and_match_a_serial_run(tmp_path):
    job = ["debug=tiny", "progress=false", "attack=manip_untargeted", "threat.budget=0.04"]
    procs = [subprocess.Popen([sys.executable, "run.py", *job, f"paths.cache_dir={tmp_path}/shared",
                               f"hydra.run.dir={tmp_path}/run{i}"], cwd=ROOT, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(3)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], logs
    joined = "\n".join(logs)
    assert joined.count("baseline model trained in") == 1, joined  # one trained it, two loaded it
    assert joined.count("baseline model: cached") + joined.count("cached result reused") >= 2
    serial = _run(*job, f"paths.cache_dir={tmp_path}/alone", f"hydra.run.dir={tmp_path}/serial")
    assert serial.returncode == 0, serial.stderr[-2000:]
    expected = (tmp_path / "serial" / "metrics.csv").read_bytes()
    for i in range(3):
        assert (tmp_path / f"run{i}" / "metrics.csv").read_bytes() == expected


# -- launchers -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_joblib_and_submitit_local_render_the_basic_launchers_table_byte_for_byte(tmp_path):
    tables = {}
    for name, launcher in (("basic", []), ("joblib", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
                           ("submitit", ["hydra/launcher=submitit_local"])):
        r = _run("paper=atex_tab1", "debug=tiny", "progress=false", *launcher, f"paths.cache_dir={tmp_path}/c_{name}",
                 f"hydra.sweep.dir={tmp_path}/sweep_{name}", f"paths.results_dir={tmp_path}/r_{name}")
        assert r.returncode == 0, r.stderr[-3000:]
        out = tmp_path / f"r_{name}" / "atex_tab1"
        tables[name] = {f: (out / f).read_bytes() for f in ("table.md", "table.csv", "metrics.csv")}
    assert tables["joblib"] == tables["basic"] and tables["submitit"] == tables["basic"]


def test_the_slurm_launcher_composes_with_what_a_user_sets():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["paper=atex_tab1", "hydra/launcher=slurm",
                                                       "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=0"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 0, 240)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=local_parallel"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2


@pytest.mark.parametrize("args,message", [
    (["hydra/launcher=nope"], "robex error: In 'hydra/config': Could not find 'hydra/launcher/nope'"),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "robex error: hydra.launcher.n_jobs=0 is not allowed"),
    (["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=-2"], "robex error: hydra.launcher.n_jobs=-2 is not allowed"),
])
def test_a_bad_launcher_setting_is_one_line_before_any_job(tmp_path, args, message):
    r = _run("-m", "paper=atex_tab1", "debug=tiny", *args, f"hydra.sweep.dir={tmp_path}/sweep",
             f"paths.cache_dir={tmp_path}/cache", timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.splitlines()[0].startswith(message)
    assert not (tmp_path / "sweep").exists()  # no job started


def test_a_cache_folder_that_cannot_be_written_stops_a_parallel_sweep_before_its_jobs(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = _run("-m", "paper=atex_tab1", "debug=tiny", "hydra/launcher=local_parallel",
             f"hydra.sweep.dir={tmp_path}/sweep", f"paths.cache_dir={blocker}/cache", timeout=120)
    assert r.returncode == 2 and r.stderr.startswith(f"robex error: paths.cache_dir={blocker}/cache cannot be written")
    assert not (tmp_path / "sweep").exists()
