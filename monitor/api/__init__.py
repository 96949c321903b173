"""The REST API (FastAPI). ``create_app`` builds it; ``driftwatch serve`` runs it, with the
ingest front's process (``FrontProcess``) when an ingest port is set."""

from monitor.api.app import create_app
from monitor.api.ingest_link import FrontProcess

__all__ = ["FrontProcess", "create_app"]
