"""The worker fleet's entrypoint (issue 17): Celery workers and beat over the sync service.

Needs the ``celery`` extra (``pip install 'seatgate[celery]'``). ``seatgate worker``,
``seatgate beat`` and ``seatgate fleet ...`` (``entrypoints/cli/fleet.py``) start and watch it;
:mod:`.app` is the Celery app, its task and beat's scheduler; :mod:`.settings` the environment it
reads. ``celery -A seatgate.core.entrypoints.worker.celery_app worker`` works too. See docs/fleet.md.
"""
