"""The files ``seatgate new-adapter`` writes (see :mod:`seatgate.core.scaffold`)."""
