"""Sans-I/O cores of the two bridge kinds (G-B1): `McuCore` (TelePresence MCU) and
`TsCore` (TelePresence Server, remotely managed). No event loop, no sockets, no
clocks: `now` is passed in, randomness is injected."""

from bridges.core.common import BridgeCore, CallAnswer, CallRefused, Fault, Params
from bridges.core.mcu import McuCore
from bridges.core.ts import TsCore

__all__ = ["BridgeCore", "CallAnswer", "CallRefused", "Fault", "McuCore", "Params", "TsCore"]
