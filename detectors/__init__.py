"""Statistics: drift methods, data quality, performance and its estimation.

Imports nothing of the project (see docs/architecture.md).
"""
