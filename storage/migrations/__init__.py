"""Alembic migrations of the metadata store, shipped inside the package.

No ``alembic.ini`` is needed: :func:`make_config` builds the configuration in code. See
``README.md`` in this folder for how to add a migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent
VERSIONS = SCRIPT_LOCATION / "versions"


def script_head() -> str:
    """The head revision, read from the scripts' file names: revisions are numbered in
    sequence (``versions/0007_alert_data_times.py`` is revision ``"0007"``, see README.md), so
    the head is the highest number. What ``MetadataStore.at_head`` compares the database with
    at every start-up without importing Alembic and building its script graph (~1 s);
    ``tests/storage/test_metadata_migrations.py`` checks it against Alembic's own head."""
    return max(p.name.split("_", 1)[0] for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def make_config(url: str | None = None, connection: Any = None) -> Config:
    """An Alembic ``Config`` pointing at this package's migration scripts.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL that ``env.py`` connects to when no ``connection`` is given (used by
        ``alembic.command.revision(..., autogenerate=True)``).
    connection : sqlalchemy.engine.Connection, optional
        An open connection to run migrations on; ``env.py`` then uses it as it is, inside the
        caller's transaction.

    Returns
    -------
    alembic.config.Config
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    # Without it Alembic warns about the legacy way of splitting version_locations.
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation treats ``%`` specially (URL-escaped passwords).
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# Tables other libraries create in the metadata database (APScheduler's job store) are not
# ours: autogenerate and ``schema_diff`` must neither drop nor compare them.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic ``include_name`` hook: skip the tables of ``FOREIGN_TABLES``."""
    return not (type_ == "table" and name in FOREIGN_TABLES)
