"""The Celery app of bosun's workers: create, configure, discover tasks."""

from celery import Celery

from shared.queueing import celery_config
from shared.settings import get_settings

app = Celery("bosun")
app.conf.update(celery_config(get_settings()))
app.conf.update(include=["worker.tasks"])

import worker.signals  # noqa: E402,F401  (worker start-up and fork hooks)
