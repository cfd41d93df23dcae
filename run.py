"""robex's one entry point: compose the config with Hydra and run the job (robex.pipeline.run).

    python run.py paper=atex_tab1                # a whole paper table (a preset sweeps itself)
    python run.py -m paper=atex_tab1 threat.budget=0.02   # the same sweep narrowed to one budget
    python run.py attack=manip_targeted threat.budget=0.04  # one job
"""
import sys

import hydra
from omegaconf import DictConfig

from robex.errors import user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from robex.pipeline import run

    try:
        run(cfg)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        print(f"robex error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    from robex.cli import exit_on_bad_overrides

    exit_on_bad_overrides()  # a bad override: one "robex error:" line first, exit 2
    main()
