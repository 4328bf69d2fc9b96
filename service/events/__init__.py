"""Live updates: a job's events as Server-Sent Events, and webhooks when a job ends."""
