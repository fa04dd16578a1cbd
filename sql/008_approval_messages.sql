-- Where each approval request was posted in Slack, so any decision can update that message.

ALTER TABLE support_approvals
    ADD COLUMN slack_channel text,
    ADD COLUMN slack_ts text;
