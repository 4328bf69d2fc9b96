"""The simulation driver: the real control loop, workflows and policies over the emulator on a
virtual clock, with the built-in workloads replaced by a calibrated analytic model."""
