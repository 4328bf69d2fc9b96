"""Published memory-sizing methods, implemented from their papers for the benchmark to put
side by side with ce-scaling: ``parrotfish`` (Moghimi et al., SoCC 2023) and ``jolteon``
(Zhang et al., NSDI 2024). Both measure before they decide — billed profiling runs in a stage of
their own, like power-tuning's — and then hold static sizes."""
