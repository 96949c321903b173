"""Alerting: rules over metric results, alert state, grouping, silences, signed webhook delivery.

Modules (pure unless noted):

- ``rules``: :class:`~alerts.rules.Rule` parsed from its JSON/YAML form;
- ``evaluate``: ``evaluate(rule, new_results, previous_state, now) -> transitions``;
- ``grouping``: Alertmanager-style group planner over the notification log;
- ``silences``: silence matchers and inhibition;
- ``formats``: Alertmanager v4 (+ context), Slack and PagerDuty Events v2 bodies;
- ``ssrf``: URL and address checks for channels;
- ``defaults``: ``default_rules(model, task)`` for ``driftwatch init``;
- ``backtest``: replay a rule over stored results;
- ``engine`` (uses the store): :class:`~alerts.engine.AlertEngine`;
- ``delivery`` (I/O): :class:`~alerts.delivery.DeliveryWorker`.

See ``docs/alerting.md``.
"""
