-- The weekly review's figures the views of 016 did not have (README, "Weekly review"): they are
-- KPIs too, so they are defined here, next to the others, and read by KpiStore like them.

-- Each automatic reply sent to a customer (support_ticket_messages: the event log does not
-- record replies).
CREATE VIEW kpi_auto_replies AS
SELECT m.ticket_id, m.article_ids, m.created_at AS occurred_at
FROM support_ticket_messages m
WHERE m.direction = 'outbound' AND m.kind = 'auto_reply';

-- A reviewer's grade of one sampled automatic decision ("AI answer quality": graded good).
CREATE VIEW kpi_review_grades AS
SELECT e.ticket_id, coalesce(e.details ->> 'grade', '-') AS grade,
       e.details ->> 'grade' = 'good' AS good, e.occurred_at
FROM support_kpi_events e
WHERE e.event = 'review_graded';

-- Read-only for the runtime role, like 016's views.
REVOKE ALL ON kpi_auto_replies, kpi_review_grades FROM kruxt_runtime;
GRANT SELECT ON kpi_auto_replies, kpi_review_grades TO kruxt_runtime;
