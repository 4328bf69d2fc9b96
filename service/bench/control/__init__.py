"""``cescale bench-control``: how fast the control plane itself is, on Postgres — a reconcile
pass over many running jobs (one replica and two), the forecaster's cheap path, and the API
under load from a separate process."""
