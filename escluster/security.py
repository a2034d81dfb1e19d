"""The program's own users of each cluster, in Elasticsearch's file realm.

The setup step and (on Kubernetes) the readiness probe must authenticate before any password of the
native realm is set, and keep working when `elastic`'s password is rotated. So, as ECK does with its
`elastic-internal` users, two users live in the file realm of every node (`config/users`,
`config/users_roles`, `config/roles.yml`):
- ADMIN_USER (superuser) sets the `elastic` and `kibana_system` passwords through the API;
- PROBE_USER (cluster `monitor` only) reads cluster health for readiness.

elastic/elasticsearch x-pack security `FileUserPasswdStore` reads `user:hash` lines and picks the hash
algorithm from its prefix (`$2a$` is bcrypt, as Go's bcrypt and pulumi-random's `bcrypt_hash` write it);
`FileUserRolesStore` reads `role:user,user`; both files are watched and reloaded (every 5 s by default).
The reserved realm is consulted first, so these names must not be reserved users.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

ADMIN_USER = "escluster-admin"
PROBE_USER = "escluster-probe"
PROBE_ROLE = "escluster_probe"
ADMIN_ROLE = "superuser"
RESERVED_USERS = frozenset(
    {"elastic", "kibana", "kibana_system", "logstash_system", "beats_system", "apm_system", "remote_monitoring_user"}
)
# What the probe may read: cluster health and node info, nothing in any index.
PROBE_PRIVILEGES = {"cluster": ["monitor"]}
# `pulumi up` issues a certificate anew in its last days (pulumi-tls early_renewal_hours); a validity of
# less than three windows would renew every node more often than it serves.
CERT_RENEWAL_DAYS = 30
MIN_CERT_VALIDITY_DAYS = 3 * CERT_RENEWAL_DAYS


def users_file(hashes: Mapping[str, str]) -> str:
    """`config/users`: one `user:bcrypt-hash` line per user."""
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes))


def users_roles_file() -> str:
    """`config/users_roles`: one `role:user,…` line per role."""
    return f"{ADMIN_ROLE}:{ADMIN_USER}\n{PROBE_ROLE}:{PROBE_USER}\n"


def roles_file() -> str:
    """`config/roles.yml`: the probe's role (superuser is built in)."""
    return yaml.safe_dump({PROBE_ROLE: PROBE_PRIVILEGES}, sort_keys=True)
