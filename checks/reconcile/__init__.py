"""Reconciliation: the running DB against the year/history DB (`migration.reconcile`), HIS payments against the
channels' statement files (`reconcile.payments`), and two-sided totals such as the monthly insurance
settlement (`reconcile.totals`). Discrepancies become findings with their own category, for people to settle."""
