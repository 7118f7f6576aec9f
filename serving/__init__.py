"""Serving: stores, the merge, the stats API and the dashboard (spine 4)."""
