"""The golden store: recorded reference tensors, their injected inputs and tolerances."""
