-- Seed for "Back-office dashboard at 1M lines" (docs/performance.md): run on an
-- empty, migrated database, e.g. psql -d leb_backoffice -f docs/dashboard-seed.sql
-- 1M lines, 2M top-up orders over a year, 1M messages, 500k payment attempts, 20k tickets,
-- and the ledger under them (1M wallets, 4.1M transfers).
BEGIN;
INSERT INTO lines_numberpolicy (code, name, first_topup_days, grace_days, suspension_days, quarantine_days,
  max_validity_days, extension_rule, number_prefix, reminder_offsets, restore_fee,
  forfeit_balance_at_termination, refund_validity_rule, plans_from_balance, requires_real_name)
VALUES ('bench-dash', 'Dashboard bench', 30, 30, 60, 90, 365, 'stack', '', '[30, 7, 1]', 0, true, 'revoke', false, false);
INSERT INTO lines_line (iccid, eid, activation_code, currency, status, activated_at, valid_until,
  terminated_at, next_transition_at, created_at, policy_id)
SELECT '8985299' || lpad(i::text, 13, '0'), '', '', CASE WHEN i % 5 = 0 THEN 'GBP' ELSE 'HKD' END,
  CASE WHEN i % 10 = 1 THEN 'terminated' WHEN i % 20 = 3 THEN 'grace' WHEN i % 50 = 7 THEN 'suspended'
       WHEN i % 100 = 9 THEN 'inventory' ELSE 'active' END,
  now() - interval '400 days',
  CASE WHEN i % 100 = 9 THEN NULL ELSE now() + ((i % 400) - 30) * interval '1 day' END,
  CASE WHEN i % 10 = 1 THEN now() - (i % 365) * interval '1 day' END,
  CASE WHEN i % 10 = 1 OR i % 100 = 9 THEN NULL ELSE now() + (i % 400) * interval '1 day' END,
  now() - interval '400 days', (SELECT max(id) FROM lines_numberpolicy)
FROM generate_series(1, 1000000) AS i;
INSERT INTO topups_topuporder (public_id, channel, currency, price, quote, status, idempotency_key,
  request_hash, actor, created_at, expires_at, paid_at, payment_provider, payment_reference,
  fulfilled_at, failure_reason, refund_due, line_id)
SELECT md5(i::text)::uuid, (ARRAY['web','ivr','ussd','agent','voucher','auto','admin'])[1 + i % 7],
  CASE WHEN i % 5 = 0 THEN 'GBP' ELSE 'HKD' END, 5000 + (i % 4) * 5000, '{}',
  CASE WHEN i % 40 = 0 THEN 'failed' WHEN i % 41 = 0 THEN 'expired' WHEN i % 97 = 0 THEN 'refunded' ELSE 'fulfilled' END,
  'bench:' || i, '-', 'order:web', now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute',
  now(), now() - (i % 365) * interval '1 day', 'sandbox', '',
  now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute', '', false,
  (SELECT min(id) FROM lines_line) + (i % 1000000)
FROM generate_series(1, 2000000) AS i;
INSERT INTO notifications_notification (recipient, channel, destination, language, time_zone, kind, context,
  dedupe_key, status, reason, attempts, skip_if_validity_changed, last_error, provider_message_id,
  created_at, secret_keys)
SELECT 'line:' || i, (ARRAY['email','sms','webhook','centre'])[1 + i % 4], '', 'en', 'Asia/Hong_Kong',
  (ARRAY['expiry_reminder','grace_started','line_suspended','number_loss_warning','topup_succeeded'])[1 + i % 5],
  '{}', 'bench:' || i, (ARRAY['sent','sent','sent','failed','skipped','pending'])[1 + i % 6], '', 1, false, '', '',
  now() - (i % 365) * interval '1 day', ''
FROM generate_series(1, 1000000) AS i;
INSERT INTO payments_paymentattempt (public_id, provider, provider_reference, amount, currency, status,
  failure_code, failure_message, checkout_url, provider_data, created_at, updated_at, order_id)
SELECT md5('p' || i)::uuid, (ARRAY['sandbox','stripe','paypal'])[1 + i % 3], '', 5000, 'HKD',
  (ARRAY['succeeded','succeeded','succeeded','failed','cancelled','pending','created','succeeded'])[1 + i % 8],
  '', '', '', '{}', now() - (i % 365) * interval '1 day', now(), (SELECT min(id) FROM topups_topuporder) + i
FROM generate_series(1, 500000) AS i;
INSERT INTO support_ticket (public_id, contact_email, contact_phone, language, subject, category, status,
  created_at, updated_at)
SELECT md5('t' || i)::uuid, 'x@example.com', '', 'en', 'bench', 'other',
  (ARRAY['open','answered','closed','closed','closed'])[1 + i % 5],
  now() - (i % 60) * interval '1 day', now()
FROM generate_series(1, 20000) AS i;
-- The ledger behind the reports: a wallet per line; for 2,000,000 top-ups the
-- payment (clearing -> suspense) and the credit (suspense -> wallet); and
-- 100,000 balances forfeited at termination (wallet -> forfeited). Timing data:
-- the wallets' running balances are not kept in step.
INSERT INTO ledger_account (code, kind, currency, no_negative, tracks_balance, balance, created_at)
VALUES ('clearing:sandbox:HKD', 'clearing', 'HKD', false, false, 0, now()),
       ('suspense:HKD', 'suspense', 'HKD', false, false, 0, now()),
       ('forfeited:HKD', 'forfeited', 'HKD', false, false, 0, now());
INSERT INTO ledger_account (code, kind, currency, no_negative, tracks_balance, balance, created_at)
SELECT 'wallet:line:bench-' || i, 'wallet', 'HKD', false, true, 0, now()
FROM generate_series(1, 1000000) AS i;
INSERT INTO ledger_transfergroup (idempotency_key, content_hash, description, created_at)
SELECT 'bench:topup:' || i, '', '', now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute'
FROM generate_series(1, 2000000) AS i;
INSERT INTO ledger_transfergroup (idempotency_key, content_hash, description, created_at)
SELECT 'bench:forfeit:' || i, '', '', now() - (i % 365) * interval '1 day'
FROM generate_series(1, 100000) AS i;
INSERT INTO ledger_transfer (group_id, debit_account_id, credit_account_id, amount, currency, code, created_at)
SELECT k.g0 + i - 1, k.clearing, k.suspense, 5000, 'HKD', 'payment',
  now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute'
FROM generate_series(1, 2000000) AS i CROSS JOIN (SELECT
  (SELECT min(id) FROM ledger_transfergroup) AS g0,
  (SELECT id FROM ledger_account WHERE code = 'clearing:sandbox:HKD') AS clearing,
  (SELECT id FROM ledger_account WHERE code = 'suspense:HKD') AS suspense) AS k;
INSERT INTO ledger_transfer (group_id, debit_account_id, credit_account_id, amount, currency, code, created_at)
SELECT k.g0 + i - 1, k.suspense, k.w0 + (i % 1000000), 5000, 'HKD', 'topup.credit',
  now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute'
FROM generate_series(1, 2000000) AS i CROSS JOIN (SELECT
  (SELECT min(id) FROM ledger_transfergroup) AS g0,
  (SELECT id FROM ledger_account WHERE code = 'suspense:HKD') AS suspense,
  (SELECT min(id) FROM ledger_account WHERE kind = 'wallet') AS w0) AS k;
INSERT INTO ledger_transfer (group_id, debit_account_id, credit_account_id, amount, currency, code, created_at)
SELECT k.g0 + i - 1, k.w0 + (i % 1000000), k.forfeited, 1000, 'HKD', 'forfeit',
  now() - (i % 365) * interval '1 day'
FROM generate_series(1, 100000) AS i CROSS JOIN (SELECT
  (SELECT min(id) FROM ledger_transfergroup WHERE idempotency_key LIKE 'bench:forfeit:%') AS g0,
  (SELECT id FROM ledger_account WHERE code = 'forfeited:HKD') AS forfeited,
  (SELECT min(id) FROM ledger_account WHERE kind = 'wallet') AS w0) AS k;
COMMIT;
VACUUM ANALYZE lines_line;
VACUUM ANALYZE topups_topuporder;
VACUUM ANALYZE notifications_notification;
VACUUM ANALYZE payments_paymentattempt;
VACUUM ANALYZE support_ticket;
VACUUM ANALYZE ledger_account;
VACUUM ANALYZE ledger_transfergroup;
VACUUM ANALYZE ledger_transfer;
