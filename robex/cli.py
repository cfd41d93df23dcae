"""Command-line checks that run before Hydra starts a job.

Hydra reports a bad override (an unknown option, a setting that does not exist, a malformed value)
as a multi-line block with exit code 1. :func:`check_overrides` composes the command line's
overrides first (each value of a ``-m`` sweep once) and turns such a failure into robex's form: a
first line ``robex error: ...`` that names the override, then Hydra's own details (for an unknown
option, its list of the available choices), exit code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"

# settings that were renamed: the old name on the command line gets the new one in the message
RENAMED = {"eps": "threat.budget (the attack's budget) or defense.delta (ATEX's own magnitude)",
           "k": "step"}

# command-line flags after which robex leaves everything to Hydra (help, config printing, ...)
_HYDRA_ONLY = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion",
               "-sc", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--resolve",
               "--package", "-p", "--run", "-r")


def _variants(overrides, multirun: bool) -> list[list[str]]:
    """Override lists to compose: as given, or for a sweep one list per swept value (the other
    sweeps at their first value). Non-enumerable sweeps (intervals) are left to Hydra."""
    if not multirun:
        return [[o.input_line for o in overrides]]
    fixed, swept = [], []
    for o in overrides:
        if not o.is_sweep_override():
            fixed.append(o.input_line)
        elif o.is_discrete_sweep():
            swept.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
    if not swept:
        return [fixed]
    first = [values[0] for values in swept]
    out = [fixed + first]
    for i, values in enumerate(swept):
        out += [fixed + first[:i] + [v] + first[i + 1:] for v in values[1:]]
    return out


def _message(exc: Exception, line: list[str]) -> str:
    text = str(exc).strip() or type(exc).__name__
    if text.startswith("In 'config': "):
        text = text[len("In 'config': "):]
    head, _, rest = text.partition("\n")
    for override in line:
        key = override.lstrip("~+").split("=", 1)[0]
        if f"'{key}'" in head and key in RENAMED:
            return f"robex error: {override}: there is no setting {key!r}; use {RENAMED[key]}"
    return f"robex error: {head}" + (f"\n{rest}" if rest.strip() else "")


def _folder_problem(cfg, key: str, hint: str) -> str | None:
    """The folder at config key ``key`` must exist or be creatable, and be writable."""
    import os

    from omegaconf import OmegaConf

    try:
        folder = Path(str(OmegaConf.select(cfg, key)))
    except Exception:  # an interpolation only Hydra's runtime can resolve: leave it to Hydra
        return None
    p = folder if folder.is_absolute() else Path.cwd() / folder
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.is_dir() and os.access(p, os.W_OK | os.X_OK):
        return None
    why = f"{p} is not a folder" if not p.is_dir() else f"{p} is not writable"
    return f"robex error: {key}={folder} cannot be written ({why}): choose a folder robex may write to ({hint})"


def _output_folder_problem(cfg, multirun: bool) -> str | None:
    """The folder Hydra will write the job(s) into must be creatable: a file in its way or a
    read-only parent is named here instead of Hydra's traceback."""
    from omegaconf import OmegaConf

    sweep = multirun or str(OmegaConf.select(cfg, "hydra.mode", default="")) == "RunMode.MULTIRUN"
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    return _folder_problem(cfg, key, f"{key}=<folder>, or paths.outputs=<folder>")


def _launcher_problem(cfg) -> str | None:
    """Checked before Hydra hands the jobs to a launcher (in other processes, or on a cluster, a
    bad setting would surface as a worker's traceback): the number of parallel jobs, and the cache
    folder every job shares."""
    from omegaconf import OmegaConf

    launcher = OmegaConf.select(cfg, "hydra.launcher") or {}
    if "n_jobs" in launcher:
        n = launcher.get("n_jobs")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return (f"robex error: hydra.launcher.n_jobs={n!r} is not allowed: it must be an integer >= 1 "
                    f"(the number of jobs run at once)")
    if OmegaConf.select(cfg, "use_cache", default=True):
        return _folder_problem(cfg, "paths.cache_dir", "paths.cache_dir=<folder>, or use_cache=false")
    return None


def check_overrides(argv: list[str]) -> str | None:
    """None if every override composes, else the robex error text (first line ``robex error:``)."""
    if any(a.split("=", 1)[0] in _HYDRA_ONLY for a in argv):
        return None
    multirun = any(a in ("-m", "--multirun") for a in argv)
    args = [a for a in argv if not a.startswith("-")]
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception as exc:  # malformed override syntax
        return _message(exc, args)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            for i, line in enumerate(_variants(overrides, multirun)):
                try:
                    cfg = compose(config_name="config", overrides=line, return_hydra_config=True)
                except Exception as exc:
                    return _message(exc, line)
                if i == 0:
                    problem = _output_folder_problem(cfg, multirun) or _launcher_problem(cfg)
                    if problem:
                        return problem
    finally:
        GlobalHydra.instance().clear()
    return None


def exit_on_bad_overrides(argv: list[str] | None = None) -> None:
    """Print the error and exit 2 when the command line does not compose."""
    err = check_overrides(sys.argv[1:] if argv is None else argv)
    if err is not None:
        print(err, file=sys.stderr)
        sys.exit(2)

