"""Configuration: one settings class, read from the environment and a TOML file.

Every variable starts with ``S1AT_``; nested sections use a double underscore, for
example ``S1AT_AUTOTASK__USERNAME`` or ``S1AT_TICKET__QUEUE``. A TOML file named by
``S1AT_CONFIG_FILE`` (or ``--config`` on the command line) provides the same keys, and
the environment wins over the file. Secrets are ``SecretStr`` and are unwrapped only by
the client that sends them, and by the log filter that scrubs them.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_VARIABLE = "S1AT_CONFIG_FILE"
DEFAULT_ZONE_URL = (
    "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation"
)


def _strip_secret(value: object) -> object:
    # Secrets pasted into env files or mounted from Kubernetes often end in a
    # newline; sent as is, the header is refused and the value lands in the error.
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, SecretStr):
        return SecretStr(value.get_secret_value().strip())
    return value


def _header_safe(value: SecretStr) -> SecretStr:
    # Checked after the value became a SecretStr, so a failure shows it masked.
    text = value.get_secret_value()
    bad = next((i for i, ch in enumerate(text) if not " " <= ch <= "~"), None)
    if bad is not None:
        msg = (
            "must be printable ASCII to travel in an HTTP header; character "
            f"{bad + 1} of the value is not"
        )
        raise ValueError(msg)
    return value


HeaderSecret = Annotated[
    SecretStr, BeforeValidator(_strip_secret), AfterValidator(_header_safe)
]


class _Section(BaseModel):
    # A misspelt key in the TOML file or an S1AT_ variable is an error, not a
    # default silently kept. Inputs stay out of error messages: pydantic would
    # quote a refused secret as it was typed.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True
    )


class Severity(StrEnum):
    """How urgent a threat is, before it becomes a tenant's priority label."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AutotaskSettings(_Section):
    """Where the Autotask REST API is and who we are to it."""

    username: str = Field(
        default="",
        description="API-only user's username (an email address).",
        max_length=254,
    )
    secret: HeaderSecret = Field(
        default=SecretStr(""), description="The API user's secret."
    )
    integration_code: HeaderSecret = Field(
        default=SecretStr(""),
        description="The API tracking identifier sent as ApiIntegrationCode.",
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "REST base such as https://webservices3.autotask.net/atservicesrest/; "
            "when set, zone discovery is skipped."
        ),
    )
    zone_url: str = Field(
        default=DEFAULT_ZONE_URL, description="Zone discovery endpoint (no auth)."
    )
    timeout_seconds: float = Field(
        default=30.0, ge=0.5, le=300.0, description="Timeout of one HTTP request."
    )
    settle_seconds: float = Field(
        default=15.0,
        ge=0.0,
        le=300.0,
        description=(
            "After a create that failed without a clear answer, how long to wait, "
            "holding the threat's lock, before looking the ticket up again."
        ),
    )
    request_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description=(
            "Repeats of a request that failed in passing, when repeating it cannot "
            "do anything twice (a read, or a write Autotask surely refused)."
        ),
    )

    def missing(self) -> list[str]:
        """The variables still to set before Autotask can be called."""
        values = {
            "S1AT_AUTOTASK__USERNAME": self.username,
            "S1AT_AUTOTASK__SECRET": self.secret.get_secret_value(),
            "S1AT_AUTOTASK__INTEGRATION_CODE": self.integration_code.get_secret_value(),
        }
        return [name for name, value in values.items() if not value]

    def tenant_key(self) -> str:
        """A short, stable, non-secret name for this tenant, used in cache keys."""
        where = self.base_url or self.zone_url
        digest = hashlib.sha256(f"{where}|{self.username.lower()}".encode())
        return digest.hexdigest()[:16]


class TicketSettings(_Section):
    """Ticket defaults, given as the labels an Autotask admin sees, not as ids."""

    status: str = Field(default="New", description="Status label of a new ticket.")
    queue: str | None = Field(
        default="Security Operations", description="Queue label; empty for none."
    )
    issue_type: str | None = Field(
        default="Security Incident", description="Issue type label."
    )
    sub_issue_type_malicious: str | None = Field(
        default="Malware Detected",
        description="Sub-issue type label for threats SentinelOne calls malicious.",
    )
    sub_issue_type_suspicious: str | None = Field(
        default="Suspicious Activity",
        description="Sub-issue type label for every other threat.",
    )
    source: str | None = Field(
        default="Monitoring Alert", description="Source label of the ticket."
    )
    ticket_type: str | None = Field(default="Alert", description="Ticket type label.")
    ticket_category: str | None = Field(
        default=None, description="Ticket category label; empty for the default."
    )
    close_status: str | None = Field(
        default="Complete",
        description=(
            "Status label a ticket moves to when SentinelOne resolves the incident "
            "or an analyst marks it a false positive; empty to never close."
        ),
    )
    reopen_status: str | None = Field(
        default="In Progress",
        description=(
            "Status label a closed ticket moves to when its threat changes while "
            "still active; empty to leave closed tickets alone."
        ),
    )
    note_type: str = Field(
        default="Task Detail", description="Note type label of the notes we add."
    )
    note_publish: str = Field(
        default="Internal Only",
        description=(
            "Publish label of the notes we add; keep it internal, since they carry "
            "security detail a client portal must not show."
        ),
    )
    priorities: dict[Severity, str] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: "Critical",
            Severity.HIGH: "High",
            Severity.MEDIUM: "Medium",
            Severity.LOW: "Low",
        },
        description="Priority label for each severity.",
    )

    @field_validator(
        "queue",
        "issue_type",
        "sub_issue_type_malicious",
        "sub_issue_type_suspicious",
        "source",
        "ticket_type",
        "ticket_category",
        "close_status",
        "reopen_status",
    )
    @classmethod
    def _empty_means_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class MappingSettings(_Section):
    """How a SentinelOne site or account finds its Autotask company."""

    companies: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Explicit map from a SentinelOne site id, site name or account name to an "
            "Autotask company id; checked before any name matching."
        ),
    )
    fallback_company_id: int | None = Field(
        default=None,
        ge=0,
        description="Company that gets a threat no site or name maps to.",
    )


class SentinelOneSettings(_Section):
    """The SentinelOne console: links in tickets, and its API for fetching threats."""

    console_url: str | None = Field(
        default=None,
        description="Console base URL such as https://usea1-partner.sentinelone.net.",
    )
    api_url: str | None = Field(
        default=None,
        description="API base URL; the console URL when empty.",
    )
    api_token: HeaderSecret = Field(
        default=SecretStr(""), description="API token, sent as 'ApiToken <token>'."
    )
    timeout_seconds: float = Field(
        default=30.0, ge=1.0, le=300.0, description="Timeout of one HTTP request."
    )

    def api_base(self) -> str | None:
        """Where the API lives, or None when SentinelOne is not configured."""
        return self.api_url or self.console_url

    def is_configured(self) -> bool:
        """Whether threats can be fetched from the API."""
        return bool(self.api_base()) and len(self.api_token) > 0


class ReceiverSettings(_Section):
    """The self-hosted webhook receiver: how it listens, authenticates and retries."""

    secret: HeaderSecret = Field(
        default=SecretStr(""),
        description=(
            "Shared secret the sender puts in the secret header; the receiver refuses "
            "to start without one."
        ),
    )
    secret_header: str = Field(
        default="X-Webhook-Secret",
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$",
        description="Request header that carries the shared secret.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=32 * 1024 * 1024,
        description="Largest request body accepted, in bytes; larger ones get 413.",
    )
    data_dir: Path = Field(
        default=Path(".s1-autotask"),
        description="Folder holding the SQLite file where every delivery is kept.",
    )
    deployment: str = Field(
        default="threat-to-ticket/threat-to-ticket",
        pattern=r"^[^/\s]{1,200}/[^/\s]{1,200}$",
        description="Prefect deployment, as flow-name/deployment-name, runs start on.",
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=253,
        description="Address to listen on; 0.0.0.0 to accept other machines.",
    )
    port: int = Field(default=8787, ge=1, le=65535, description="Port to listen on.")
    retry_base_seconds: float = Field(
        default=5.0,
        ge=0.1,
        le=3600.0,
        description="Wait before the first retry of a failed handoff; doubles after.",
    )
    retry_max_seconds: float = Field(
        default=600.0,
        ge=0.1,
        le=86400.0,
        description="Longest wait between two retries of a handoff.",
    )
    max_attempts: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Handoff attempts before a delivery is marked failed.",
    )
    retry_poll_seconds: float = Field(
        default=2.0,
        ge=0.05,
        le=60.0,
        description="How often the receiver looks for deliveries due a retry.",
    )
    handoff_timeout_seconds: float = Field(
        default=30.0,
        ge=1.0,
        # Stays below the store's claim lease (five minutes), so a slow Prefect API
        # never lets a second receiver take over a delivery still being handed on.
        le=120.0,
        description="Longest wait for Prefect to start one flow run.",
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description=(
            "Open connections beyond which a request is answered 503 at once, so "
            "senders that never finish cannot pile up work."
        ),
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=300.0,
        description=(
            "Longest wait for a request body once its headers are in; a body not "
            "complete by then gets 408 and is not kept."
        ),
    )

    @model_validator(mode="after")
    def _max_wait_covers_base(self) -> ReceiverSettings:
        if self.retry_max_seconds < self.retry_base_seconds:
            msg = (
                f"retry_max_seconds ({self.retry_max_seconds}) is below "
                f"retry_base_seconds ({self.retry_base_seconds})."
            )
            raise ValueError(msg)
        return self


class LockSettings(_Section):
    """The per-threat lock that keeps two runs from writing one ticket at once."""

    redis_url: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Redis URL (redis://[:password@]host:6379/0) for locks shared by workers "
            "on several machines; empty for lock files on this machine."
        ),
    )
    folder: Path = Field(
        default_factory=lambda: Path.home() / ".s1-autotask" / "locks",
        description="Folder of the lock files; every worker on the machine shares it.",
    )
    wait_seconds: float = Field(
        default=120.0,
        ge=1.0,
        le=3600.0,
        description="Longest wait for another run to finish with the same threat.",
    )
    hold_seconds: float = Field(
        default=600.0,
        ge=10.0,
        le=86400.0,
        description=(
            "Redis only: a lock held longer than this is freed, so a worker that "
            "died holding it cannot block the threat forever."
        ),
    )


class Settings(BaseSettings):
    """Everything s1-autotask reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="S1AT_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
    )

    autotask: AutotaskSettings = Field(default_factory=AutotaskSettings)
    ticket: TicketSettings = Field(default_factory=TicketSettings)
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    sentinelone: SentinelOneSettings = Field(default_factory=SentinelOneSettings)
    locks: LockSettings = Field(default_factory=LockSettings)
    receiver: ReceiverSettings = Field(default_factory=ReceiverSettings)
    cache_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How long Autotask companies, resources and fields are reused.",
    )
    concurrency_limit: str = Field(
        default="autotask-api",
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
        description="Prefect global concurrency limit held around Autotask calls.",
    )
    concurrency_slots: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Slots of that limit; Autotask allows 3 threads per endpoint.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, Path(config_file)))
        return tuple(sources)

    def secret_values(self) -> list[str]:
        """Every configured credential value, for log redaction."""
        secrets = [
            self.autotask.secret,
            self.autotask.integration_code,
            self.sentinelone.api_token,
            self.locks.redis_url,
            self.receiver.secret,
        ]
        return [value for s in secrets if (value := s.get_secret_value())]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; a missing or misspelt config file is an error, not a default."""
    if config_file is not None:
        if not config_file.is_file():
            msg = f"Configuration file {config_file} does not exist."
            raise FileNotFoundError(msg)
        os.environ[CONFIG_FILE_VARIABLE] = str(config_file)
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    if named:
        _check_config_file(Path(named))
    return Settings(**overrides)


def _check_config_file(path: Path) -> None:
    """Refuse a file that is not TOML or names a top-level key we do not know.

    Keys inside the sections are checked by the sections themselves.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"Configuration file {path} cannot be read as TOML: {exc}"
        raise ValueError(msg) from exc
    unknown = sorted(set(document) - set(Settings.model_fields))
    if unknown:
        msg = (
            f"Configuration file {path} has unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(Settings.model_fields))}."
        )
        raise ValueError(msg)
