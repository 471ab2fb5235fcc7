"""One repository per aggregate, each over the unit of work's connection: all of seatgate's SQL
(with :mod:`..bulk` for the statements sent straight to the driver)."""
