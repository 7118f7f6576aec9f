"""Serving: the analytics and real-time stores, the Stats API and the dashboard."""
