"""Sans-I/O cores of the network simulator: impairment decisions and traces."""
