"""The alarm catalogue of a Conductor peer.

Modelled on the VCS / Expressway platform's catalogue (cisco-behaviour.md 4.3);
the Conductor's own ids and texts are UNCONFIRMED, so where the platform has
no alarm for a condition tplab picks an id in the same numbering and says so.
An alarm is identified by (code, subject): subject distinguishes, e.g., which
peer a communication failure concerns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    WARNING = "Warning"
    ERROR = "Error"
    CRITICAL = "Critical"


@dataclass(frozen=True, slots=True)
class AlarmKind:
    code: int
    title: str
    severity: Severity
    action: str


CATALOGUE: dict[int, AlarmKind] = {
    kind.code: kind
    for kind in (
        AlarmKind(
            20003,
            "Invalid cluster configuration",
            Severity.ERROR,
            "Check System > Clustering: the peer list must include this peer's own LAN 1 "
            "address and no address twice",
        ),
        AlarmKind(
            20004,
            "Cluster communication failure",
            Severity.ERROR,
            "Check the network between the peers, the pre-shared key and the peer lists",
        ),
        AlarmKind(
            20008,
            "Cluster replication error: software version mismatch",
            Severity.ERROR,
            "Every peer must run the same software version (G-R1): upgrade or remove the peer",
        ),
        AlarmKind(
            20009,
            "Cluster replication error: error during automatic replication",
            Severity.ERROR,
            "Check the network path to the peer: its MTU (lower System > Ethernet MTU to the "
            "path's smallest), firewalls (UDP 500, 1719, 4369-4380) and latency",
        ),
        AlarmKind(
            20012,
            "Cluster replication error: peer list differs",
            Severity.ERROR,
            "Make the Peer IP address lists identical on every peer (System > Clustering)",
        ),
        AlarmKind(
            20015,
            "Cluster replication error: local system not in peer list",
            Severity.ERROR,
            "Add this peer's own LAN 1 address to its peer list",
        ),
        # tplab's choices in the platform's cluster numbering (G-R2, G-R10, G-R5, G-R3)
        AlarmKind(
            20030,
            "Cluster peer not licensed for clustering",
            Severity.ERROR,
            "Install a release key; all peers must be full capacity, or both Select",
        ),
        AlarmKind(
            20031,
            "Cluster peer latency too high",
            Severity.WARNING,
            "Peers need at most 15 ms one way, 30 ms round trip between them",
        ),
        AlarmKind(
            20032,
            "Cluster peer clock offset",
            Severity.WARNING,
            "Use the same, or closely synchronized, NTP servers on every peer",
        ),
        AlarmKind(
            20033,
            "Cluster peer NTP not synchronized",
            Severity.WARNING,
            "Check System > Time on that peer",
        ),
        AlarmKind(
            20007,
            "Restart required",
            Severity.WARNING,
            "Go to Maintenance > Restart options and click Restart to apply saved settings",
        ),
        AlarmKind(
            25002,
            "Date and time not validated",
            Severity.WARNING,
            "Configure at least one reachable NTP server on System > Time",
        ),
        # tplab's choice (no platform alarm found): G-R11
        AlarmKind(
            25010,
            "DNS servers not configured",
            Severity.WARNING,
            "Configure at least one DNS server on System > DNS",
        ),
        # tplab's choices for the platform's "insecure password in use" alarms (G-P3)
        AlarmKind(
            40009,
            "Security alert: the admin account has the default password",
            Severity.CRITICAL,
            "Change the admin password on Users",
        ),
        AlarmKind(
            40010,
            "Security alert: the root account has the default password",
            Severity.CRITICAL,
            "Change the root password on Users",
        ),
    )
}
