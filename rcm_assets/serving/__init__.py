"""The pre-submission scoring service (`rcm serve`): schemas from the column registry, the serving state
loaded from the `serving/bundle` asset and the model registry, the scoring path (the batch's own code) and
the FastAPI app. docs/RUNBOOK.md says how to run it."""
