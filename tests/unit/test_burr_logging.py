"""Burr's action-error report stays for bugs and is dropped for expected upstream failures."""

from __future__ import annotations

import logging

import pytest

from chatbot.domain.errors import TurnError
from chatbot.graph.burr_logging import (
    BURR_APPLICATION_LOGGER,
    ExpectedActionErrors,
    quiet_expected_action_errors,
)


def _report(exc: BaseException) -> None:
    try:
        raise exc
    except BaseException:
        logging.getLogger(BURR_APPLICATION_LOGGER).exception("action failed: state=%s", "secret")


def test_upstream_failures_are_not_reported_but_bugs_are(caplog: pytest.LogCaptureFixture) -> None:
    quiet_expected_action_errors()
    quiet_expected_action_errors()  # installing twice keeps one filter
    burr_logger = logging.getLogger(BURR_APPLICATION_LOGGER)
    assert sum(isinstance(f, ExpectedActionErrors) for f in burr_logger.filters) == 1
    with caplog.at_level(logging.ERROR, logger=BURR_APPLICATION_LOGGER):
        _report(TurnError("upstream_auth", "The service rejected our credentials."))
        assert caplog.records == []
        _report(KeyError("chat_history"))
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [KeyError]
