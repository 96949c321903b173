"""The storage layer's exceptions, one tree (``monitor.errors`` maps them to the service's).

::

    StorageError                          base of everything ``storage`` raises on purpose
    ├── MetadataError                     metadata store (storage.metadata.errors)
    │   ├── AlreadyExists                 a create would duplicate a unique name
    │   ├── NotFound                      the named object does not exist
    │   ├── Ambiguous                     an abbreviation matches several objects
    │   └── SecretError                   a stored secret cannot be decrypted (key changed?)
    ├── LogStoreError                     DuckDB log store (storage.logstore)
    │   ├── SchemaChangeError             a column would change type
    │   └── UnknownModelError (KeyError)  the model has no tables
    ├── KpiQueryError (ValueError)        a KPI measure the store cannot compute
    └── JsonReadError (ValueError)        DuckDB could not read a JSON body as the columns

``storage`` imports nothing of the project, so it cannot raise ``monitor``'s errors;
``monitor.errors.translate`` is the one place that maps these to them (and so to HTTP).
"""

from __future__ import annotations

__all__ = ["StorageError"]


class StorageError(Exception):
    """Base of the storage layer's errors."""
