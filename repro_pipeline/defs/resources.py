"""Resources: where the standby, the target server, the config files and Slack are. Secrets come from
environment variables resolved at launch (``EnvVar``) and never show in the UI or in metadata."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
from psycopg.rows import TupleRow
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from repro_pipeline.engine import dsn
from repro_pipeline.engine.config import ReproConfig, default_config_paths, load_config
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.secrets import Secret, resolve_salt
from repro_pipeline.engine.standby import LagLimits


class SourceStandby(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The DR warm standby that tenants are read from. Nothing is ever read from the primary."""

    dsn: str = Field(description="libpq URL of the hot standby's source database (set REPRO_STANDBY_DSN)")
    max_replay_lag_seconds: float = Field(default=300.0, description="refuse to read when replay lags more")
    max_replay_lag_bytes: int = Field(
        default=64 * 1024 * 1024, description="refuse when more WAL is unreplayed"
    )

    @property
    def lag_limits(self) -> LagLimits:
        return LagLimits(self.max_replay_lag_seconds, self.max_replay_lag_bytes)

    @property
    def description(self) -> str:
        return dsn.describe(self.dsn)

    def connect(self) -> psycopg.Connection[TupleRow]:
        return dsn.connect(self.dsn, role="standby (REPRO_STANDBY_DSN)")


class TargetServer(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Postgres server on which repro databases are created and, when their TTL runs out, dropped."""

    admin_dsn: str = Field(description="libpq URL of a database on the target server (set REPRO_TARGET_DSN)")
    ttl_hours: float = Field(
        default=48.0, description="how long a repro database lives before the sweep drops it"
    )

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=self.ttl_hours)

    def admin(self) -> psycopg.Connection[TupleRow]:
        return dsn.connect(self.admin_dsn, role="target server (REPRO_TARGET_DSN)", autocommit=True)

    def connect_database(self, database: str) -> psycopg.Connection[TupleRow]:
        return dsn.connect(self.database_dsn(database), role=f"repro database {database}", autocommit=True)

    def database_dsn(self, database: str) -> str:
        return dsn.with_database(self.admin_dsn, database)


class MaskingConfig(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The two config files of the support-repro guide, read unchanged."""

    mask_rules: str = Field(default=str(default_config_paths()[0]))
    commercial_extensions: str = Field(default=str(default_config_paths()[1]))

    def load(self) -> tuple[ReproConfig, Secret]:
        config = load_config(Path(self.mask_rules), Path(self.commercial_extensions))
        salt = resolve_salt(config.mask_rules.global_salt, what=f"global_salt in {self.mask_rules}")
        return config, salt


class SlackHandoff(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Posts "repro ready" to Slack: the database name, where its DSN is kept, and when it expires."""

    token: str = Field(default="", description="Slack bot token (set SLACK_BOT_TOKEN); empty: do not post")
    channel: str = Field(default="#support-repro")
    api_base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL")
    dsn_reference: str = Field(
        default="1Password → support-repro", description="where engineers find the DSN; never the DSN itself"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def post(self, text: str) -> str:
        """Post ``text`` and return the message timestamp."""
        client = WebClient(token=self.token, base_url=self.api_base_url.rstrip("/") + "/", timeout=15)
        try:
            response = client.chat_postMessage(channel=self.channel, text=text)
        except SlackApiError as exc:
            raise ReproError(
                f"Slack refused the handoff message: {exc.response.get('error', 'unknown error')}",
                "check SLACK_BOT_TOKEN and that the bot is a member of the channel",
            ) from None
        except OSError as exc:
            raise ReproError(
                f"Slack could not be reached at {urlsplit(self.api_base_url).netloc}: {type(exc).__name__}",
                "check REPRO_SLACK_API_URL and the network path to Slack",
            ) from None
        return str(response.get("ts", ""))
