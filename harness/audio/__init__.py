"""Audio I/O (io), quality metrics (metrics) and threshold checks (check) for generated (2, N)
float32 audio. Nothing is imported here: writing a WAV must not pay for scipy.signal."""
