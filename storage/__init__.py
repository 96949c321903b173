"""Persistence: the DuckDB log store and the SQLAlchemy metadata store.

Only this package writes SQL; callers use its typed functions and get plain values back.
"""
