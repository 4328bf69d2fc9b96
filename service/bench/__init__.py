"""Benchmarks: ``cescale bench`` measures outcomes (cost, job completion time, deadlines) of every
allocation policy on the same workloads through the real control loop in simulation;
``cescale bench-control`` measures the control plane itself (reconcile pass, forecaster, API)."""
