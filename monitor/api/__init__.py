"""The REST API (FastAPI). ``create_app`` builds it; ``driftwatch serve`` runs it."""

from monitor.api.app import create_app

__all__ = ["create_app"]
