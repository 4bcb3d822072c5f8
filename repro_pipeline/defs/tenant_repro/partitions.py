"""Tenants: one dynamic partition per organization, keyed by its numeric id."""

import dagster as dg

ORGANIZATIONS = "organizations"
organizations = dg.DynamicPartitionsDefinition(name=ORGANIZATIONS)
