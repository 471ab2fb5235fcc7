"""Log lines of a server, one JSON document each: the request lines of :mod:`.middleware` are
JSON already and pass through; any other record (uvicorn's, seatgate's) is wrapped. A record's
traceback is never printed: its exception type is."""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["LOG_CONFIG", "JsonLines"]


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{") and record.name == "seatgate.http.access":
            return message
        line: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, separators=(",", ":"))


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonLines}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "seatgate": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
