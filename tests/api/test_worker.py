"""A server's worker process once started (``server.build_app``'s lifespan)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from seatgate.core.entrypoints.http.server import build_app
from seatgate.core.entrypoints.http.settings import SWITCH_INTERVAL, Settings


def test_a_started_worker_freezes_what_it_holds_and_hands_the_interpreter_over_quickly(
    tmp_path: Path,
) -> None:
    # What it holds from start-up is out of the collector's walks, and a refresh thread gives
    # the event loop the interpreter back within SWITCH_INTERVAL (docs/http.md, "Sync lag").
    before = sys.getswitchinterval()
    app = build_app(Settings(db_url=f"sqlite:///{tmp_path}/worker.db", webhook_interval=0))
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert sys.getswitchinterval() == SWITCH_INTERVAL != before
            assert gc.get_freeze_count() > 10_000
    finally:
        sys.setswitchinterval(before)
        gc.unfreeze()
