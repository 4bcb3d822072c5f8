"""Tenants: one dynamic partition per organization, keyed by its numeric id."""

import dagster as dg

organizations = dg.DynamicPartitionsDefinition(name="organizations")
