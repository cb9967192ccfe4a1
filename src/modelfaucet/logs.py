"""Log lines on stderr: readable text, or one JSON object per line (``LOG_FORMAT=json``).

Configured once per process by :func:`configure_logging` — by ``modelfaucet serve`` and by
each worker process (``modelfaucet.http.asgi``). A JSON line carries only the fields named in
:data:`FIELDS`, whatever else a caller attached to the record, so a header, a body or a
token can never reach the log through ``extra=``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from .config import Settings

# The request log's fields (see modelfaucet.http.middleware), in the order a line shows them.
FIELDS = ("request_id", "method", "route", "status", "duration_ms")


def configure_logging(settings: Settings) -> None:
    """Send every logger's records (uvicorn's too) to stderr, in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Migration chatter on every start-up buries the lines an operator needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the request fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
