"""The embedded default: the local Postgres stack (primary, streaming standby, target) and the synthetic
source built on it."""
