"""The staff console: sign-in, the queue, a ticket, approvals, incidents and KPIs in a web page."""
