"""Tests for the log filter that masks credentials."""

import logging

from s1_autotask.redaction import MASK, SecretRedactionFilter

SECRET = "s3cr3t-value-for-tests"


def make_logger(name, redaction):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(redaction)
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, records


class TestSecretRedactionFilter:
    """The filter masks secrets in messages, arguments and tracebacks."""

    def test_secret_in_arguments_is_masked(self):
        logger, records = make_logger("t.args", SecretRedactionFilter([SECRET]))

        logger.info("header was %s", SECRET)

        assert records == [f"header was {MASK}"]

    def test_secret_in_a_traceback_is_masked(self):
        logger, records = make_logger("t.exc", SecretRedactionFilter([SECRET]))

        def fail():
            msg = f"boom {SECRET}"
            raise RuntimeError(msg)

        try:
            fail()
        except RuntimeError:
            logger.exception("failed")

        assert SECRET not in records[0]
        assert MASK in records[0]

    def test_short_values_are_not_treated_as_secrets(self):
        logger, records = make_logger("t.short", SecretRedactionFilter(["abc"]))

        logger.info("abc stays")

        assert records == ["abc stays"]
