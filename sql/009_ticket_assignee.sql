-- Who on the support team owns a ticket (DESIGN.md's "reassign" staff action).

ALTER TABLE support_tickets ADD COLUMN assignee text;
