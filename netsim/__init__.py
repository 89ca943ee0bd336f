"""netsim: the world tplab nodes live in (clock, randomness, addresses, links, impairments)."""
