"""The Cisco VCS: its external policy-service client (health checks, failover,
Default CPL), search rules, calls, and its admin pages.

`vcs_policy.wire` holds the codecs of the policy protocol (the form-encoded
request and the CPL answer); the Conductor peers use only that module.
"""
