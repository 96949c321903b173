"""``driftwatch profile``: the profiling job of a lake-mode model (see monitor/lake_job.py and
docs/scale-out.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from monitor.cli_common import ApiKey, DataDir, Url

err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile(
        lake: Annotated[
            str,
            typer.Option(
                "--lake", help="Lake root: a path or a URI pyarrow reads (file://, s3://...)."
            ),
        ],
        model: Annotated[str, typer.Option("--model", help="Model name.")],
        engine: Annotated[
            str, typer.Option("--engine", help="duckdb (one process) or spark.")
        ] = "duckdb",
        master: Annotated[
            str,
            typer.Option(
                "--master",
                help="Spark master for --engine spark (local[*] here; under spark-submit "
                "pass '' to take the submit command's).",
            ),
        ] = "local[*]",
        url: Url = None,
        api_key: ApiKey = None,
        data_dir: DataDir = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    ) -> None:
        """Profile the lake's changed dates of a model and hand the profiles to the server
        (--url) or the local data dir; prints a JSON line of what it did."""
        from monitor.cli_common import fail, open_core
        from monitor.errors import DriftwatchError
        from monitor.lake_job import engine_for, run_job
        from storage.lake_profiles import LakeError

        if engine not in ("duckdb", "spark"):
            raise fail(f"--engine must be duckdb or spark, not {engine!r}")
        say = None if quiet else (lambda line: err.print(line, markup=False))
        try:
            run, close = engine_for(engine, master, lake)
        except ImportError as exc:
            raise fail(str(exc)) from exc
        try:
            # the server (--url) or the local data dir, as for ingest (monitor.core_backend)
            with open_core(url, api_key, data_dir) as backend:
                try:
                    report = run_job(
                        backend.profile_target(), lake, model, run, engine, progress=say
                    )
                except (DriftwatchError, KeyError, LakeError) as exc:
                    raise fail(str(exc)) from exc
        finally:
            close()
        typer.echo(json.dumps(report.as_dict()))
