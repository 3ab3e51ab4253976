"""Tests for reading settings from the environment and a TOML file."""

import pytest
from pydantic import ValidationError

from s1_autotask.config import Settings, Severity, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for key in [k for k in os.environ if k.startswith("S1AT_")]:
        monkeypatch.delenv(key)


class TestSettings:
    """Settings come from S1AT_ variables and an optional TOML file."""

    def test_nested_values_come_from_double_underscore_variables(self, monkeypatch):
        monkeypatch.setenv("S1AT_AUTOTASK__USERNAME", "api@example.com")
        monkeypatch.setenv("S1AT_TICKET__QUEUE", "Level I Support")
        monkeypatch.setenv("S1AT_MAPPING__COMPANIES", '{"Example Site": 101}')

        settings = load_settings()

        assert settings.autotask.username == "api@example.com"
        assert settings.ticket.queue == "Level I Support"
        assert settings.mapping.companies == {"Example Site": 101}

    def test_secrets_are_hidden_in_repr(self, monkeypatch):
        monkeypatch.setenv("S1AT_AUTOTASK__SECRET", "very-secret-value")

        settings = load_settings()

        assert "very-secret-value" not in repr(settings)
        assert "very-secret-value" not in str(settings.model_dump())

    def test_toml_file_is_read_and_environment_wins(self, monkeypatch, tmp_path):
        config = tmp_path / "s1at.toml"
        config.write_text(
            'cache_ttl_seconds = 120\n[ticket]\nstatus = "In Progress"\n'
            '[ticket.priorities]\ncritical = "High"\n'
        )
        monkeypatch.setenv("S1AT_CACHE_TTL_SECONDS", "60")
        monkeypatch.setenv("S1AT_CONFIG_FILE", str(config))

        settings = load_settings()

        assert settings.cache_ttl_seconds == 60
        assert settings.ticket.status == "In Progress"
        assert settings.ticket.priorities[Severity.CRITICAL] == "High"

    def test_missing_config_file_is_an_error(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load_settings(tmp_path / "absent.toml")

    def test_out_of_range_value_names_the_field(self, monkeypatch):
        monkeypatch.setenv("S1AT_CONCURRENCY_SLOTS", "50")

        with pytest.raises(ValidationError, match="concurrency_slots"):
            load_settings()

    def test_empty_label_means_no_value(self, monkeypatch):
        monkeypatch.setenv("S1AT_TICKET__QUEUE", "")

        assert load_settings().ticket.queue is None

    def test_tenant_key_is_stable_and_hides_the_username(self, monkeypatch):
        monkeypatch.setenv("S1AT_AUTOTASK__USERNAME", "API@example.com")
        first = load_settings().autotask.tenant_key()
        monkeypatch.setenv("S1AT_AUTOTASK__USERNAME", "api@example.com")

        second = load_settings().autotask.tenant_key()

        assert first == second
        assert "example" not in first


class TestReceiverSettings:
    """The webhook receiver's section: S1AT_RECEIVER__*."""

    def test_receiver_values_come_from_their_variables(self, monkeypatch):
        monkeypatch.setenv("S1AT_RECEIVER__SECRET", "receiver-shared-secret-value")
        monkeypatch.setenv("S1AT_RECEIVER__PORT", "9000")
        monkeypatch.setenv("S1AT_RECEIVER__DATA_DIR", "/var/lib/s1-autotask")

        settings = load_settings()

        assert settings.receiver.port == 9000
        assert str(settings.receiver.data_dir) == "/var/lib/s1-autotask"
        assert "receiver-shared-secret-value" in settings.secret_values()
        assert "receiver-shared-secret-value" not in repr(settings)

    def test_the_receiver_needs_no_secret_until_it_serves(self):
        settings = load_settings()

        assert settings.receiver.secret.get_secret_value() == ""
        assert settings.receiver.secret_header == "X-Webhook-Secret"
        assert settings.receiver.max_body_bytes == 1024 * 1024

    @pytest.mark.parametrize(
        ("variable", "value", "field"),
        [
            ("S1AT_RECEIVER__MAX_BODY_BYTES", str(64 * 1024 * 1024), "max_body_bytes"),
            ("S1AT_RECEIVER__SECRET_HEADER", "X Secret", "secret_header"),
            ("S1AT_RECEIVER__RETRY_MAX_SECONDS", "1", "retry_max_seconds"),
        ],
    )
    def test_an_unusable_receiver_value_names_the_field(
        self, monkeypatch, variable, value, field
    ):
        monkeypatch.setenv(variable, value)

        with pytest.raises(ValidationError, match=field):
            load_settings()


class TestSecretsFromFiles:
    """Secrets as env files and mounted secrets deliver them: with a newline."""

    def test_surrounding_whitespace_is_stripped_from_every_secret(self, monkeypatch):
        monkeypatch.setenv("S1AT_AUTOTASK__SECRET", "s3cr3t-from-a-file\n")
        monkeypatch.setenv("S1AT_AUTOTASK__INTEGRATION_CODE", " CODE-123456\r\n")
        monkeypatch.setenv("S1AT_SENTINELONE__API_TOKEN", "token-abcdef\n")

        settings = Settings()

        assert settings.autotask.secret.get_secret_value() == "s3cr3t-from-a-file"
        assert settings.autotask.integration_code.get_secret_value() == "CODE-123456"
        assert settings.sentinelone.api_token.get_secret_value() == "token-abcdef"

    @pytest.mark.parametrize("value", ["s3cr3t-\x07-inside", "s3cr3t-DISTINCTIVÉ"])
    def test_a_secret_no_header_can_carry_is_refused_without_showing_it(
        self, monkeypatch, value
    ):
        monkeypatch.setenv("S1AT_AUTOTASK__SECRET", value)

        with pytest.raises(ValueError, match="printable ASCII") as caught:
            Settings()

        assert "s3cr3t" not in str(caught.value)


class TestConfigFileMistakes:
    def test_a_misspelt_key_in_a_section_is_refused(self, tmp_path):
        path = tmp_path / "s1at.toml"
        path.write_text('[ticket]\nqueu = "Security"\n')

        with pytest.raises(ValueError, match="queu"):
            load_settings(path)

    def test_an_unknown_top_level_key_is_refused_naming_the_file(self, tmp_path):
        path = tmp_path / "s1at.toml"
        path.write_text("fallback_compnay_id = 0\n")

        with pytest.raises(ValueError) as caught:
            load_settings(path)

        assert str(path) in str(caught.value)
        assert "fallback_compnay_id" in str(caught.value)

    def test_a_file_that_is_not_toml_names_the_file(self, tmp_path):
        path = tmp_path / "s1at.toml"
        path.write_text("this is = = not toml\n")

        with pytest.raises(ValueError, match="cannot be read as TOML") as caught:
            load_settings(path)

        assert str(path) in str(caught.value)


class TestReceiverLimits:
    """How long and how many connections the receiver serves: bounded settings."""

    def test_the_receiver_limits_default_to_safe_values(self):
        settings = load_settings()

        assert settings.receiver.max_connections == 256
        assert settings.receiver.body_timeout_seconds == 30.0

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("S1AT_RECEIVER__MAX_CONNECTIONS", "0"),
            ("S1AT_RECEIVER__MAX_CONNECTIONS", "100000"),
            ("S1AT_RECEIVER__BODY_TIMEOUT_SECONDS", "0.5"),
            ("S1AT_RECEIVER__BODY_TIMEOUT_SECONDS", "3600"),
        ],
    )
    def test_a_receiver_limit_out_of_bounds_is_refused(
        self, monkeypatch, variable, value
    ):
        monkeypatch.setenv(variable, value)

        with pytest.raises(ValidationError, match=variable.split("__")[1].lower()):
            load_settings()
