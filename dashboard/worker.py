"""Celery worker of the background jobs, when ``PMDASH_CELERY_BROKER`` is set::

    PMDASH_CELERY_BROKER=redis://host:6379/1 celery -A dashboard.worker worker

The worker builds the app, as each web server does: registering the Exchange page's background
callbacks is what declares their jobs as tasks of the Celery app (:func:`dashboard.background.manager`).
Run it with the same environment as the web servers (broker, results cache, data directory).
"""
from __future__ import annotations

import dashboard.app  # noqa: F401  (building the app registers the jobs as tasks)

from . import background

if not background.broker():
    raise RuntimeError("dashboard.worker runs background jobs from Celery: set PMDASH_CELERY_BROKER "
                       "(e.g. redis://host:6379/1) here and on the web servers")

#: The Celery app ``celery -A dashboard.worker`` finds.
celery = background.manager().handle
