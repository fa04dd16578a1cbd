-- The KPIs' definitions (issue 16; README, "KPIs"): one view per fact, one row per fact with the
-- time it happened. kruxt/adapters/postgres/kpi_report.py only filters a view by period and
-- aggregates it (count, share, percentile); what counts, and against which target, is here.
--
-- Source: support_kpi_events, except playbook decisions and undone runs, which the event log
-- does not record: those come from support_approvals and support_playbook_runs. Recurring
-- causes come from the defect tables of 015.

-- DESIGN.md's targets, in seconds (kruxt/models/sla.py has the same defaults; a test compares).
CREATE VIEW kpi_targets (kpi, priority, target_seconds) AS
VALUES ('first_response', 'P1', 900.0::double precision),
       ('first_response', 'P2', 900.0),
       ('first_response', 'P3', 14400.0),
       ('first_response', 'P4', 14400.0),
       ('resolution', 'P1', 14400.0),
       ('resolution', 'P2', 86400.0),
       ('resolution', 'P3', 259200.0),
       ('resolution', 'P4', 259200.0);

-- First response: from ticket creation to the first message to the customer.
CREATE VIEW kpi_first_responses AS
SELECT e.ticket_id, coalesce(e.priority, '-') AS priority, e.value_seconds AS seconds,
       t.target_seconds, e.value_seconds <= t.target_seconds AS within_target, e.occurred_at
FROM support_kpi_events e
LEFT JOIN kpi_targets t ON t.kpi = 'first_response' AND t.priority = e.priority
WHERE e.event = 'first_response' AND e.value_seconds IS NOT NULL;

-- Resolution: from ticket creation to resolved, wall-clock (the SLA clock's own view, with
-- the customer's wait excluded, is kpi_sla_clocks).
CREATE VIEW kpi_resolutions AS
SELECT e.ticket_id, coalesce(e.priority, '-') AS priority, e.value_seconds AS seconds,
       t.target_seconds, e.value_seconds <= t.target_seconds AS within_target, e.occurred_at
FROM support_kpi_events e
LEFT JOIN kpi_targets t ON t.kpi = 'resolution' AND t.priority = e.priority
WHERE e.event = 'resolved' AND e.value_seconds IS NOT NULL;

-- Each SLA clock that stopped in time (sla_met) or breached (sla_breached).
CREATE VIEW kpi_sla_clocks AS
SELECT e.ticket_id, coalesce(e.details ->> 'clock', '-') AS clock,
       coalesce(e.priority, '-') AS priority, e.event = 'sla_met' AS met, e.occurred_at
FROM support_kpi_events e
WHERE e.event IN ('sla_met', 'sla_breached');

-- A reviewer's verdict on an AI triage: accepted as is, or corrected.
CREATE VIEW kpi_triage_reviews AS
SELECT e.ticket_id, coalesce(e.priority, '-') AS priority,
       coalesce((e.details ->> 'accepted')::boolean, false) AS accepted,
       e.details -> 'correction' AS correction, e.occurred_at
FROM support_kpi_events e
WHERE e.event = 'triage_reviewed';

-- Tickets handed to a person: the first move to awaiting_human, per ticket.
CREATE VIEW kpi_handoffs AS
SELECT e.ticket_id, min(e.occurred_at) AS occurred_at
FROM support_kpi_events e
WHERE e.event = 'status_changed' AND e.details ->> 'to' = 'awaiting_human'
  AND e.ticket_id IS NOT NULL
GROUP BY e.ticket_id;

-- Tickets opened, and whether they were handed to a person (at any time since).
CREATE VIEW kpi_tickets_opened AS
SELECT e.ticket_id, e.details ->> 'channel' AS channel,
       EXISTS (SELECT 1 FROM kpi_handoffs h WHERE h.ticket_id = e.ticket_id) AS handed_off,
       e.occurred_at
FROM support_kpi_events e
WHERE e.event = 'ticket_opened';

-- Each time a ticket was solved (the lifecycle's ticket_solved: confirmed, assumed or staff),
-- whether a ticket_reopened followed it, and whether it counts as an automatic resolution:
-- solved by the customer's word (confirmed) or silence (assumed), never handed to a person,
-- and not reopened since (a reopen deducts it).
CREATE VIEW kpi_solved AS
SELECT s.ticket_id, coalesce(s.details ->> 'how', '-') AS how,
       r.reopened, h.handed_off,
       s.details ->> 'how' IN ('confirmed', 'assumed') AND NOT h.handed_off AS automatic,
       s.details ->> 'how' IN ('confirmed', 'assumed') AND NOT h.handed_off AND NOT r.reopened
           AS automatic_kept,
       s.occurred_at
FROM support_kpi_events s
CROSS JOIN LATERAL (
    SELECT EXISTS (
        SELECT 1 FROM support_kpi_events o
        WHERE o.event = 'ticket_reopened' AND o.ticket_id = s.ticket_id
          AND o.occurred_at >= s.occurred_at AND o.id > s.id
    ) AS reopened
) r
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM kpi_handoffs x WHERE x.ticket_id = s.ticket_id) AS handed_off
) h
WHERE s.event = 'ticket_solved';

-- Playbook plans decided (approved, rejected, expired) and completed runs undone (compensated
-- or rolled back): the approval and run tables, which the event log does not cover.
CREATE VIEW kpi_playbook_outcomes AS
SELECT a.ticket_id, a.playbook, a.status AS outcome,
       coalesce(a.decided_at, a.expires_at) AS occurred_at
FROM support_approvals a
WHERE a.kind = 'plan' AND a.status IN ('approved', 'rejected', 'expired')
UNION ALL
SELECT r.ticket_id, r.playbook, 'compensated' AS outcome, r.updated_at AS occurred_at
FROM support_playbook_runs r
WHERE r.status IN ('compensated', 'rolled_back');

-- Each resolution of a known product defect, with its cause and GitHub issue.
CREATE VIEW kpi_defect_occurrences AS
SELECT d.fingerprint, d.category, d.root_cause, d.issue_number, d.issue_url,
       d.issue_state AS state, o.source, o.at AS occurred_at
FROM support_defect_issues d
JOIN support_defect_occurrences o USING (fingerprint);

-- The runtime role reads the views and nothing more (010's default privileges would grant it
-- write privileges it has no use for).
DO $$
DECLARE
    v text;
BEGIN
    FOREACH v IN ARRAY ARRAY['kpi_targets', 'kpi_first_responses', 'kpi_resolutions',
                             'kpi_sla_clocks', 'kpi_triage_reviews', 'kpi_handoffs',
                             'kpi_tickets_opened', 'kpi_solved', 'kpi_playbook_outcomes',
                             'kpi_defect_occurrences']
    LOOP
        EXECUTE format('REVOKE ALL ON %I FROM kruxt_runtime', v);
        EXECUTE format('GRANT SELECT ON %I TO kruxt_runtime', v);
    END LOOP;
END
$$;
