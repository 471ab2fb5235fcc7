"""``celery -A seatgate.core.entrypoints.worker.celery_app worker|beat``: the fleet's Celery app on
the environment's settings, for those who start Celery themselves (``seatgate worker`` and
``seatgate beat`` build their own)."""

from .app import create_app

app = create_app()
