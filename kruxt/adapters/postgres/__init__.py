"""PostgreSQL: the pool, the migration runner and the support-schema repositories.

Every write goes through one transaction together with its audit entry and KPI events.
"""
