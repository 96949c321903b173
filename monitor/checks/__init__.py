"""Monitor kinds as checks: one :class:`~monitor.checks.base.Check` per kind, behind a registry.

=========================  ==========================================  ======================
monitor kind               check                                       module
=========================  ==========================================  ======================
``feature_drift``          drift per column + tenant/segment drivers   :mod:`.drift`
``prediction_drift``       the same on the prediction and scores       :mod:`.drift`
``data_quality``           column quality + operational metrics        :mod:`.quality`
``performance``            realized performance on labelled rows       :mod:`.performance`
``estimated_performance``  CBPE / DLE without labels                   :mod:`.estimated`
``multivariate_drift``     domain classifier on the window sample      :mod:`.multivariate`
=========================  ==========================================  ======================

A check gets one window in a :class:`~monitor.checks.base.CheckContext` (the monitor, its model
schema, the window, the profile engine, the log reader and the caches) and returns its metric
results and the raw rows scanned; it stores nothing. The runner (:mod:`monitor.runner`) owns
scheduling, run bookkeeping and storing. Adding a kind: a module here with a class decorated
by :func:`register`, imported below; ``tests/monitor/test_check_contract.py`` then runs the
contract over it.
"""

from __future__ import annotations

from monitor.checks import drift, estimated, multivariate, performance, quality
from monitor.checks.base import Check, CheckContext, CheckEnv
from monitor.checks.registry import get_check, register, registered_kinds

__all__ = [
    "Check",
    "CheckContext",
    "CheckEnv",
    "drift",
    "estimated",
    "get_check",
    "multivariate",
    "performance",
    "quality",
    "register",
    "registered_kinds",
]
