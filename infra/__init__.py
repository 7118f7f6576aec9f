"""Local engines (fetch, verify, start) and deployment configuration for the platform."""
