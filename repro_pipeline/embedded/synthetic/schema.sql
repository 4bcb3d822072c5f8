-- Synthetic multi-tenant billing source: the users' contract.
--
-- Exactly seven tables. Do not add tables, columns, constraints or unique indexes here:
-- the subsetting engine and its tests rely on this shape.

CREATE TABLE organizations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_slug text NOT NULL UNIQUE, legal_name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), email text NOT NULL, full_name text NOT NULL, role text NOT NULL DEFAULT 'member');
CREATE TABLE subscriptions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), plan_code text NOT NULL, status text NOT NULL);
CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id bigint NOT NULL REFERENCES subscriptions(id), issued_at timestamptz NOT NULL, total_cents bigint NOT NULL, currency char(3) NOT NULL DEFAULT 'USD');
CREATE TABLE invoice_line_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, invoice_id bigint NOT NULL REFERENCES invoices(id), sku text NOT NULL, quantity int NOT NULL, unit_cents bigint NOT NULL);
CREATE TABLE payment_methods (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), last_four char(4) NOT NULL, provider_token text NOT NULL);
CREATE TABLE audit_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, organization_id bigint NOT NULL REFERENCES organizations(id), occurred_at timestamptz NOT NULL, payload jsonb NOT NULL);

-- ==== foreign-key indexes ====
-- Plain, non-unique indexes on the foreign-key columns, as a real production schema has them.
-- They change no semantics; the tenant closure walks these columns. The generator creates
-- them after loading the data (everything below this marker line runs after the load).
CREATE INDEX users_organization_id_idx ON users (organization_id);
CREATE INDEX subscriptions_organization_id_idx ON subscriptions (organization_id);
CREATE INDEX invoices_subscription_id_idx ON invoices (subscription_id);
CREATE INDEX invoice_line_items_invoice_id_idx ON invoice_line_items (invoice_id);
CREATE INDEX payment_methods_user_id_idx ON payment_methods (user_id);
CREATE INDEX audit_events_organization_id_occurred_at_idx ON audit_events (organization_id, occurred_at);
