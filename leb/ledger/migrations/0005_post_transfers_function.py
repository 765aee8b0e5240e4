"""On PostgreSQL, a transfer group is posted by one call to `leb_post_transfers`
(leb.ledger.actions.post_transfers): the key claimed, the running balances
changed in account-id order, each checked in the statement that changes it,
and the transfers inserted, in one round trip instead of three or more."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION leb_post_transfers(
    p_key text,
    p_hash text,
    p_description text,
    p_now timestamptz,
    p_debits bigint[],
    p_credits bigint[],
    p_amounts bigint[],
    p_currencies text[],
    p_codes text[],
    p_reverses bigint[],
    p_accounts bigint[],
    p_deltas bigint[],
    p_floors bigint[]
) RETURNS TABLE (group_id bigint, existing_hash text, short_account bigint)
LANGUAGE plpgsql AS $$
DECLARE
    claimed bigint;
BEGIN
    -- ON CONFLICT DO NOTHING waits for a concurrent holder of the key to
    -- finish, then reports the conflict as no row.
    INSERT INTO ledger_transfergroup (idempotency_key, content_hash, description, created_at)
    VALUES (p_key, p_hash, p_description, p_now)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO claimed;
    IF claimed IS NULL THEN
        RETURN QUERY
            SELECT g.id, g.content_hash::text, NULL::bigint
            FROM ledger_transfergroup g WHERE g.idempotency_key = p_key;
        RETURN;
    END IF;
    -- p_accounts is sorted by id: every poster locks balances in one order.
    FOR i IN 1 .. coalesce(array_length(p_accounts, 1), 0) LOOP
        UPDATE ledger_account SET balance = balance + p_deltas[i]
        WHERE id = p_accounts[i] AND balance >= p_floors[i];
        IF NOT FOUND THEN
            -- The caller raises InsufficientFunds and rolls all of this back.
            RETURN QUERY SELECT claimed, NULL::text, p_accounts[i];
            RETURN;
        END IF;
    END LOOP;
    INSERT INTO ledger_transfer
        (group_id, debit_account_id, credit_account_id, amount, currency, code, reverses_id, created_at)
    SELECT claimed, t.debit, t.credit, t.amount, t.currency, t.code, t.reverses, p_now
    FROM unnest(p_debits, p_credits, p_amounts, p_currencies, p_codes, p_reverses)
        AS t (debit, credit, amount, currency, code, reverses);
    RETURN QUERY SELECT claimed, NULL::text, NULL::bigint;
END
$$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS leb_post_transfers("
    "text, text, text, timestamptz, bigint[], bigint[], bigint[], text[], text[], bigint[], "
    "bigint[], bigint[], bigint[])"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_liability_report_permission"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
