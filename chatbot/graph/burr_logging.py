"""Keep Burr's per-action error report for bugs, not for upstream failures we expect.

When an action raises, Burr logs a forty-line report: a help banner, the action's
state (the user's prompt and history among it) and the traceback. For an upstream
failure (a 401, a 429 after retries, a cut stream) that report says nothing our own
one-line warning does not, repeats user content into the logs, and buries the access
log. Unexpected exceptions still get Burr's full report.
"""

from __future__ import annotations

import logging

from chatbot.domain.errors import TurnError

BURR_APPLICATION_LOGGER = "burr.core.application"


class ExpectedActionErrors(logging.Filter):
    """Drops Burr's report when the action failed with a ``TurnError``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, TurnError)


def quiet_expected_action_errors() -> None:
    """Install the filter once on Burr's application logger (idempotent)."""
    burr_logger = logging.getLogger(BURR_APPLICATION_LOGGER)
    if not any(isinstance(f, ExpectedActionErrors) for f in burr_logger.filters):
        burr_logger.addFilter(ExpectedActionErrors())
