"""Wire formats spoken by a Conductor peer: frozen dataclass messages with encode/decode.

Decoders take any bytes and either return a message or raise
`peers.wire.errors.RemoteProtocolError`; encoders refuse invalid messages with
`LocalProtocolError`. Nothing here does I/O, keeps time or draws randomness.
"""
