"""Turn request bodies into validated Arrow batches, splitting off rejected rows.

One pass per column: a typed fast path (Arrow casts, vectorised checks) and a per-value slow
path only for the columns where the fast path found something wrong, so a clean batch of
50,000 JSON rows validates in tens of milliseconds and a dirty one still says, for every bad
row, which field failed and why. Valid rows are never dropped because a neighbour was bad.

Row rules (each broken one rejects the row, with the field and the reason; see
``docs/ingest.md``): numbers finite and at most :attr:`Limits.max_abs_number` in magnitude
(``NaN``/``Infinity`` as numbers or strings are refused: send null for a missing value);
timestamps between :attr:`Limits.min_ts` and now + :attr:`Limits.max_future`; text no longer
than its limit (ids, category values, free text), never clipped. A body that cannot be read as
a whole (a truncated Arrow stream or Parquet file, duplicate column names, a CSV header that is
not UTF-8) is refused whole with 400.

The steps, one module each, in the order a request takes them:

* :mod:`~monitor.ingest.rules` — which fields a batch holds and how each is checked
  (:func:`inference_rules`, :func:`label_rules`, :func:`event_rules`, :func:`reference_rules`),
  and the per-row :class:`Limits`;
* :mod:`~monitor.ingest.bodies` — :func:`parse_body`: a body by its Content-Type into a
  :class:`ParsedBody`;
* :mod:`~monitor.ingest.json_columns` — large clean JSON bodies read straight into columns;
* :mod:`~monitor.ingest.convert` and :mod:`~monitor.ingest.checks` — one column to its Arrow
  type, then the vectorised row checks;
* :mod:`~monitor.ingest.validation` — :func:`validate`: the typed valid rows and the rejected
  ones (for the quarantine), in a :class:`Validated`.

Storing a validated batch (group commit, per-tenant idempotency, the quarantine) is the log
store's job: ``monitor.service.Services.ingest_inferences`` (and ``ingest_labels``,
``ingest_events``) hands it ``Validated.table`` and the rejected rows.
"""

from monitor.errors import BadRequestError
from monitor.ingest.bodies import (
    ARROW_IPC_TYPES,
    CSV_TYPES,
    JSON_TYPES,
    NDJSON_TYPES,
    PARQUET_TYPES,
    SUPPORTED_TYPES,
    ParsedBody,
    defers_parsing,
    parse_body,
    split_json_array,
)
from monitor.ingest.convert import YEARS, parse_timestamps, warm_up
from monitor.ingest.json_columns import SMALL_JSON_BYTES, json_columns
from monitor.ingest.rules import (
    ARROW_TYPES,
    TENANT_RE,
    TS_TYPE,
    FieldRule,
    Kind,
    Limits,
    event_rules,
    inference_rules,
    label_rules,
    prediction_rule,
    reference_rules,
    rules_schema,
)
from monitor.ingest.validation import RowError, Validated, event_ids, validate

__all__ = [
    "ARROW_IPC_TYPES",
    "ARROW_TYPES",
    "CSV_TYPES",
    "JSON_TYPES",
    "NDJSON_TYPES",
    "PARQUET_TYPES",
    "SMALL_JSON_BYTES",
    "SUPPORTED_TYPES",
    "TENANT_RE",
    "TS_TYPE",
    "YEARS",
    "BadRequestError",
    "FieldRule",
    "Kind",
    "Limits",
    "ParsedBody",
    "RowError",
    "Validated",
    "defers_parsing",
    "event_ids",
    "event_rules",
    "inference_rules",
    "json_columns",
    "label_rules",
    "parse_body",
    "parse_timestamps",
    "prediction_rule",
    "reference_rules",
    "rules_schema",
    "split_json_array",
    "validate",
    "warm_up",
]
