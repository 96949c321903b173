"""Errors raised by the metadata store.

::

    MetadataError (a storage.errors.StorageError)
    ├── AlreadyExists   a create would duplicate a unique name (model name, ...)
    ├── NotFound        the named object does not exist
    └── Ambiguous       an abbreviation (API key prefix) matches more than one object

Invalid arguments (unknown role, naive datetime, bad name) raise ``ValueError``: they are the
caller's bug, not a state of the database.
"""

from __future__ import annotations

from storage.errors import StorageError


class MetadataError(StorageError):
    """Base of metadata errors."""


class AlreadyExists(MetadataError):
    """A create would duplicate an existing object."""


class NotFound(MetadataError):
    """The requested object does not exist."""


class Ambiguous(MetadataError):
    """An abbreviation matches several objects; the message lists them."""
