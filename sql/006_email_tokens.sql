-- Approval links sent by e-mail: one row per signed token, consumed at most once.
--
-- The token itself is never stored (it is a bearer credential); its random id (jti) is.
-- A consumed token stays consumed, even when the decision it carried was refused: the
-- approver asks for a new link, or decides in Slack or with `kruxt approvals decide`.

CREATE TABLE support_email_tokens (
    jti          text PRIMARY KEY,
    approval_id  uuid NOT NULL,
    ticket_id    uuid,
    approver     text NOT NULL,
    verdict      text NOT NULL CHECK (verdict IN ('approve', 'reject')),
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_from    text
);

CREATE INDEX support_email_tokens_approval_idx ON support_email_tokens (approval_id);
