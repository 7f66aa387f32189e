"""Dagster definitions: one module per layer (bronze, silver, gold, model, predictions) and the
orchestration vocabulary (partitions, automation, jobs, schedules, sensors, freshness, checks).
Assets here are thin: they call the pure functions of `rcm_assets.lib`."""
