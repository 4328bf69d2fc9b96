"""Read models for dashboards: a job's invocations and time series, a tenant's usage over time
and the functions it runs. Every figure is aggregated in SQL; every query is tenant-scoped."""
