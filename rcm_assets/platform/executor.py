"""The executor the code location runs its jobs with, chosen by the deployment (RCM_EXECUTOR).

- `in_process` (default): one process per run. The daily steps are small and each multiprocess step
  re-imports the code location (≈ 2 s), so one machine runs fastest this way (DAGSTER_NOTES §12).
- `celery`: every step is a Celery task on the broker RCM_CELERY_BROKER (e.g.
  `pyamqp://guest:guest@rabbitmq:5672//` or `redis://redis:6379/0`), queue RCM_CELERY_QUEUE (default
  `dagster`), executed by `dagster-celery` workers started from `deploy/` on any number of machines.
  Workers need the same code, environment, Dagster instance (PostgreSQL) and a lake they can all reach
  (object storage); see README "Deployment".

The choice is made when the definitions load (it decides which executor the jobs carry); the broker URL
is resolved when a run starts, so the definitions load without it.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "RCM_EXECUTOR"
BROKER_ENV = "RCM_CELERY_BROKER"
BACKEND_ENV = "RCM_CELERY_BACKEND"
QUEUE_ENV = "RCM_CELERY_QUEUE"
DEFAULT_QUEUE = "dagster"
EXECUTORS = ("in_process", "celery")


def executor_name() -> str:
    """RCM_EXECUTOR (default `in_process`); an unknown value is refused with the accepted ones."""
    name = os.environ.get(EXECUTOR_ENV, "").strip() or "in_process"
    if name not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={name!r} is not an executor; expected one of {EXECUTORS}")
    return name


def celery_queue() -> str:
    return os.environ.get(QUEUE_ENV, "").strip() or DEFAULT_QUEUE


def celery_executor_def() -> dg.ExecutorDefinition:
    """dagster-celery's executor, its broker and result backend taken from the environment at run start."""
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": {"env": BROKER_ENV},
            "backend": {"env": BACKEND_ENV} if os.environ.get(BACKEND_ENV) else "rpc://",
            "config_source": {"task_default_queue": celery_queue()},
        },
        name="rcm_celery",
    )


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor named by RCM_EXECUTOR (see the module docstring)."""
    if executor_name() == "celery":
        return celery_executor_def()
    return dg.in_process_executor
