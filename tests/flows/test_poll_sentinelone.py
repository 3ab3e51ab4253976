"""The poller against the SentinelOne emulator: new, late, failed and seen threats."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

MITRE_ID = "1373834705420286869"
MIMIKATZ_ID = "1113032189486913422"
NOT_MITIGATED_ID = "1112953674841025235"


def stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def poll(**kwargs):
    from flows.poll_sentinelone import poll_sentinelone

    return asyncio.run(poll_sentinelone(**kwargs))


def checkpoint():
    from prefect.variables import Variable

    from flows.poll_sentinelone import CHECKPOINT_VARIABLE
    from s1_autotask.sentinelone.polling import Checkpoint

    return Checkpoint.from_variable(Variable.get(CHECKPOINT_VARIABLE, default=""))


@pytest.fixture
def s1(sentinelone):
    """The emulator with every sample updated long ago, and no checkpoint yet."""
    from prefect.variables import Variable

    from flows.poll_sentinelone import CHECKPOINT_VARIABLE

    Variable.unset(CHECKPOINT_VARIABLE)
    # Our own write-backs would come round as updates; the test of that is below,
    # and the others look at the poller alone.
    sentinelone.state.write_backs_bump_updated_at = False
    old = datetime.now(UTC) - timedelta(days=30)
    for threat in sentinelone.state.threats():
        sentinelone.state.update_threat(threat["id"], updatedAt=stamp(old))
    yield sentinelone.state
    Variable.unset(CHECKPOINT_VARIABLE)


def touch(s1, threat_id, minutes_ago):
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    s1.update_threat(threat_id, updatedAt=stamp(when))
    return when


class TestPollSentinelOne:
    def test_first_poll_handles_recent_threats_and_sets_the_checkpoint(
        self, s1, configured
    ):
        touch(s1, MITRE_ID, 60)
        newest = touch(s1, MIMIKATZ_ID, 30)

        summary = poll()

        assert [o.threat_id for o in summary.outcomes] == [MITRE_ID, MIMIKATZ_ID]
        assert {t["externalID"] for t in configured.emulator.tickets} == {
            MITRE_ID,
            MIMIKATZ_ID,
        }
        assert checkpoint().updated_at == newest

    def test_a_second_poll_skips_what_it_handled(self, s1, configured):
        touch(s1, MITRE_ID, 60)
        poll()

        summary = poll()

        assert summary.fetched == 1
        assert summary.new == 0
        assert len(configured.emulator.tickets) == 1

    def test_a_late_indexed_threat_inside_the_overlap_is_handled(self, s1, configured):
        touch(s1, MIMIKATZ_ID, 5)
        poll()
        # Indexed only now, but stamped before the checkpoint the last poll set.
        touch(s1, MITRE_ID, 8)

        summary = poll(overlap_minutes=10)

        assert [o.threat_id for o in summary.outcomes] == [MITRE_ID]
        assert len(configured.emulator.tickets) == 2

    def test_a_failed_threat_holds_the_checkpoint_and_is_retried(
        self, s1, configured, monkeypatch
    ):
        from flows.threat_to_ticket import ThreatHandlingError
        from tasks._runtime import current_settings

        touch(s1, MIMIKATZ_ID, 30)
        last_handled = touch(s1, NOT_MITIGATED_ID, 20)
        touch(s1, "123456", 10)  # redacted site: only the fallback takes it
        monkeypatch.delenv("S1AT_MAPPING__FALLBACK_COMPANY_ID")
        current_settings.cache_clear()

        with pytest.raises(ThreatHandlingError, match="threat 123456"):
            poll()

        assert checkpoint().updated_at == last_handled
        monkeypatch.setenv("S1AT_MAPPING__FALLBACK_COMPANY_ID", "0")
        current_settings.cache_clear()

        summary = poll()

        assert [o.threat_id for o in summary.outcomes] == ["123456"]
        assert len(configured.emulator.tickets) == 3

    def test_polling_without_sentinelone_configured_says_what_to_set(self, configured):
        from s1_autotask.sentinelone.errors import SentinelOneNotConfiguredError

        with pytest.raises(SentinelOneNotConfiguredError, match="API_TOKEN"):
            poll()

    def test_a_threat_that_keeps_failing_is_set_aside_and_polling_moves_on(
        self, s1, configured, monkeypatch
    ):
        from flows.threat_to_ticket import ThreatHandlingError
        from tasks._runtime import current_settings

        touch(s1, "123456", 30)  # redacted site: only the fallback takes it
        newest = touch(s1, MIMIKATZ_ID, 10)
        monkeypatch.delenv("S1AT_MAPPING__FALLBACK_COMPANY_ID")
        current_settings.cache_clear()
        with pytest.raises(ThreatHandlingError, match="checkpoint stays before"):
            poll(park_after_failures=2)

        with pytest.raises(ThreatHandlingError, match="Set aside after failing") as e:
            poll(park_after_failures=2)

        assert "123456@" in str(e.value)
        assert checkpoint().updated_at == newest
        assert [t["externalID"] for t in configured.emulator.tickets] == [MIMIKATZ_ID]
        assert poll(park_after_failures=2).new == 0

    def test_our_own_write_back_comes_round_as_unchanged_and_stops_there(
        self, s1, configured
    ):
        s1.write_backs_bump_updated_at = True
        touch(s1, MITRE_ID, 60)
        [created] = poll().outcomes

        echo = poll()
        quiet = poll()

        assert created.action == "created"
        assert [o.action for o in echo.outcomes] == ["unchanged"]
        assert quiet.new == 0
        assert s1.external_ticket_id(MITRE_ID) == created.ticket_number
        assert len(s1.notes(MITRE_ID)) == 1
