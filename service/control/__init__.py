"""The control loop: claim jobs, advance their workflows, act on the platform, record results."""
