"""Resources: where the standby, the target server, the config files and Slack are, bound for every domain
of the code location.

Secrets (the servers' DSNs, Slack's token) are read from their environment variable when a run uses them and
are never resource or run config, which the launchpad shows, lets anyone edit and stores with the run. The other
settings come from the resource's config or, when it leaves them unset, from their environment variable
(``defs.settings``).
"""

import os
from datetime import timedelta
from pathlib import Path

import dagster as dg
import psycopg
from psycopg.rows import TupleRow
from pydantic import Field

from repro_pipeline.defs.settings import positive_count, positive_setting, secret_setting, text_setting
from repro_pipeline.defs.slack_client import post_message
from repro_pipeline.defs.slack_messages import SlackMessage
from repro_pipeline.engine import dsn
from repro_pipeline.engine.config import ReproConfig, default_config_paths, load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.repro_databases.secret_sink import FileSecretSink, SecretSink
from repro_pipeline.engine.secrets import Secret, resolve_salt
from repro_pipeline.engine.source.snapshot import SessionLimits
from repro_pipeline.engine.source.standby import LagLimits

STANDBY_DSN_VARIABLE = "REPRO_STANDBY_DSN"
TARGET_DSN_VARIABLE = "REPRO_TARGET_DSN"


class SourceStandby(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The DR warm standby that tenants are read from (its DSN: $REPRO_STANDBY_DSN). Nothing is ever read
    from the primary."""

    max_replay_lag_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="refuse to read when replay lags more; unset: $REPRO_MAX_REPLAY_LAG_SECONDS, else 300",
    )
    max_replay_lag_bytes: int | None = Field(
        default=None,
        gt=0,
        description="refuse when more WAL is unreplayed; unset: $REPRO_MAX_REPLAY_LAG_BYTES, else 64 MiB",
    )
    statement_timeout_seconds: float = Field(
        default=SessionLimits.statement_timeout_seconds,
        gt=0,
        allow_inf_nan=False,
        description="the longest one statement on the standby may run",
    )
    idle_in_transaction_seconds: float = Field(
        default=SessionLimits.idle_in_transaction_seconds,
        gt=0,
        allow_inf_nan=False,
        description="the longest the read's snapshot may sit idle on the standby (a vanished worker's too)",
    )

    @property
    def dsn(self) -> str:
        return secret_setting(STANDBY_DSN_VARIABLE, "the libpq URL of the hot standby's source database")

    @property
    def session_limits(self) -> SessionLimits:
        return SessionLimits(self.statement_timeout_seconds, self.idle_in_transaction_seconds)

    @property
    def lag_limits(self) -> LagLimits:
        return LagLimits(
            positive_setting(self.max_replay_lag_seconds, "REPRO_MAX_REPLAY_LAG_SECONDS", 300),
            int(positive_setting(self.max_replay_lag_bytes, "REPRO_MAX_REPLAY_LAG_BYTES", 64 * 1024 * 1024)),
        )

    @property
    def description(self) -> str:
        return dsn.describe(self.dsn)

    def connect(self) -> psycopg.Connection[TupleRow]:
        """A read-only session that commits each statement: checks read it between long target-only work."""
        return self.session_limits.connect(self.dsn, role="standby (REPRO_STANDBY_DSN)", autocommit=True)


MAX_TTL_HOURS = 24 * 90  # a repro database holds customer data, masked: a quarter at the most


class TargetServer(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Postgres server on which repro databases are created and, when their TTL runs out, dropped (the
    DSN of one of its databases, as a role that creates databases and roles: $REPRO_TARGET_DSN)."""

    ttl_hours: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TTL_HOURS,
        allow_inf_nan=False,
        description="how long a repro database lives before the sweep drops it, at most "
        f"{MAX_TTL_HOURS} (90 days); unset: $REPRO_TTL_HOURS, else 48",
    )
    load_workers: int | None = Field(
        default=None,
        ge=1,
        description="processes that read, mask and write tables at once, from one snapshot of the standby; "
        "unset: $REPRO_LOAD_WORKERS, else the core count; 1: one connection and one transaction",
    )

    load_rows_per_worker: int = Field(
        default=LoadWorkers.min_rows_each,
        ge=1,
        description="the fewest rows of a tenant that each load worker gets: a smaller tenant is loaded by "
        "fewer workers, down to one connection",
    )

    @property
    def admin_dsn(self) -> str:
        return secret_setting(TARGET_DSN_VARIABLE, "the libpq URL of a database on the target server")

    @property
    def workers(self) -> int:
        return positive_count(self.load_workers, "REPRO_LOAD_WORKERS", os.cpu_count() or 1)

    def load_workers_for(self, config: ReproConfig, salt: Secret) -> LoadWorkers:
        """The load's worker processes, which build the masks again from ``config`` and ``salt``."""
        return LoadWorkers(self.workers, config, salt, self.load_rows_per_worker)

    @property
    def ttl(self) -> timedelta:
        hours = positive_setting(self.ttl_hours, "REPRO_TTL_HOURS", 48)
        if hours > MAX_TTL_HOURS:
            raise ConfigError(
                f"a TTL of {hours:g} hours is longer than repro databases may live ({MAX_TTL_HOURS} hours)",
                f"set REPRO_TTL_HOURS (or ttl_hours) to at most {MAX_TTL_HOURS}",
            )
        return timedelta(hours=hours)

    def admin(self) -> psycopg.Connection[TupleRow]:
        return dsn.connect(self.admin_dsn, role="target server (REPRO_TARGET_DSN)", autocommit=True)

    def connect_database(self, database: str) -> psycopg.Connection[TupleRow]:
        """A session that sees every row or errors: row-level security replicated from the source never
        hides rows from the checks (``row_security = off`` refuses a query a policy would filter)."""
        return dsn.connect(
            self.database_dsn(database),
            role=f"repro database {database}",
            autocommit=True,
            options="-c row_security=off",
        )

    def database_dsn(self, database: str) -> str:
        return dsn.with_database(self.admin_dsn, database)


class MaskingConfig(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The two config files of the support-repro guide, read unchanged."""

    mask_rules: str | None = Field(
        default=None, description="unset: $REPRO_MASK_RULES, else config/mask-rules.yaml"
    )
    commercial_extensions: str | None = Field(
        default=None,
        description="unset: $REPRO_COMMERCIAL_EXTENSIONS, else config/commercial-extensions.yaml",
    )

    def load(self) -> tuple[ReproConfig, Secret]:
        """Both files and the salt they name."""
        config = self.load_config()
        salt = resolve_salt(
            config.mask_rules.global_salt, what=f"global_salt in {config.mask_rules_doc.path}"
        )
        return config, salt

    def load_config(self) -> ReproConfig:
        """Both files alone: what reading checks need, without the salt."""
        default_mask_rules, default_extensions = default_config_paths()
        mask_rules = Path(self.mask_rules) if self.mask_rules else default_mask_rules
        extensions = Path(self.commercial_extensions) if self.commercial_extensions else default_extensions
        return load_config(mask_rules, extensions)


class SlackHandoff(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Posts to the support channel: "repro ready" (the handoff), failed runs and expired databases.

    The bot token is read from ``SLACK_BOT_TOKEN`` when the handoff runs, never from run config, which the
    UI shows and stores; unset, nothing is posted.
    """

    channel: str | None = Field(default=None, description="unset: $REPRO_SLACK_CHANNEL, else #support-repro")
    api_base_url: str | None = Field(
        default=None, description="Slack Web API base URL; unset: $REPRO_SLACK_API_URL, else Slack's"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)

    @property
    def destination(self) -> str:
        return text_setting(self.channel, "REPRO_SLACK_CHANNEL", "#support-repro")

    @property
    def bot_token(self) -> str:
        return os.environ.get("SLACK_BOT_TOKEN", "")

    @property
    def api_url(self) -> str:
        return text_setting(self.api_base_url, "REPRO_SLACK_API_URL", "https://slack.com/api/")

    def post(self, message: SlackMessage, what: str = "the handoff message") -> str:
        """Post ``message`` and return its timestamp; ``what`` names it in errors."""
        return post_message(
            token=self.bot_token,
            api_url=self.api_url,
            channel=self.destination,
            text=message.text,
            blocks=message.blocks,
            what=what,
        )


class ReproSecretSink(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the DSN of each repro database's login is kept, and nowhere else: a file per database, mode
    0600, in a folder of mode 0700; its path is what the handoff shows."""

    directory: str | None = Field(
        default=None,
        description="the folder of the DSN files; unset: $REPRO_SECRET_DIR, else repro-secrets in the "
        "Dagster instance's folder ($DAGSTER_HOME)",
    )

    def sink(self, instance: dg.DagsterInstance) -> SecretSink:
        configured = text_setting(self.directory, "REPRO_SECRET_DIR", "")
        if configured:
            return FileSecretSink(Path(configured).expanduser().absolute())
        return FileSecretSink(Path(instance.root_directory) / "repro-secrets")


defs = dg.Definitions(
    resources={
        "standby": SourceStandby(),
        "target": TargetServer(),
        "masking": MaskingConfig(),
        "slack": SlackHandoff(),
        "secret_sink": ReproSecretSink(),
    }
)
