"""Conference bridges (G-B1): the TelePresence MCU and the TelePresence Server.

- `wire`: the XML-RPC codec, fault codes and tplab's call signalling (what other
  packages may import);
- `core`: sans-I/O state machines of each bridge kind;
- `node` / `web`: the node on a `Runtime` (HTTPS and HTTP XML-RPC, signalling,
  drill API); `python -m bridges` runs one as a process.
"""
