"""Sans-I/O cores of the VCS: configuration rules, policy-service health and
failover, search rules, call statistics. No asyncio, sockets or clocks here:
`now` (monotonic seconds) and `wall` (aware UTC datetime) are parameters."""
