"""What a job measures. A task is built from ``cfg.task`` and called with the job's
:class:`robex.pipeline.Context`; it returns a list of row dicts (``ctx.row(...)``)."""
