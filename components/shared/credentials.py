"""StackCredentials: the passwords and keys of a stack, from `--secret` config or pulumi-random."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from components import component_type
from escluster.sections import Security
from escluster.security import ADMIN_USER, PROBE_USER, users_file

GENERATED_PASSWORD_LENGTH = 32
# Kibana needs encryption keys of at least 32 characters, the same on every instance:
# keystore entry → the stem of its generated resource's name.
KIBANA_ENCRYPTION_KEYS = {
    "xpack.security.encryptionKey": "security",
    "xpack.encryptedSavedObjects.encryptionKey": "saved-objects",
    "xpack.reporting.encryptionKey": "reporting",
}


class StackCredentials(pulumi.ComponentResource):
    elastic_password: pulumi.Output[str]
    kibana_system_password: pulumi.Output[str]
    # Kibana keystore entry → its value: the kibana_system password and the encryption keys.
    kibana_keystore: dict[str, pulumi.Output[str]]
    # The program's own file-realm users (escluster.security): their passwords, and `config/users`.
    admin_password: pulumi.Output[str]
    probe_password: pulumi.Output[str]
    file_realm_users: pulumi.Output[str]

    def __init__(self, name: str, security: Security, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(component_type("StackCredentials"), name, None, opts)
        self.elastic_password = self._password(f"{name}-elastic", security.elastic_password)
        self.kibana_system_password = self._password(f"{name}-kibana-system", security.kibana_system_password)
        self.kibana_keystore = {
            "elasticsearch.password": self.kibana_system_password,
            **{
                entry: self._password(f"{name}-kibana-{stem}-key", None)
                for entry, stem in KIBANA_ENCRYPTION_KEYS.items()
            },
        }
        admin = self._generated(f"{name}-admin")
        probe = self._generated(f"{name}-probe")
        self.admin_password = pulumi.Output.secret(admin.result)
        self.probe_password = pulumi.Output.secret(probe.result)
        # pulumi-random keeps a bcrypt hash ($2a$10$) of each password in its state: stable across `up`s,
        # so the users file changes only when a password does.
        self.file_realm_users = pulumi.Output.secret(
            pulumi.Output.all(admin.bcrypt_hash, probe.bcrypt_hash).apply(
                lambda hashes: users_file({ADMIN_USER: hashes[0], PROBE_USER: hashes[1]})
            )
        )
        self.register_outputs({})

    def _generated(self, name: str) -> random.RandomPassword:
        # Letters and digits only: the value travels through files, JSON and curl config unquoted-safe.
        return random.RandomPassword(
            name, length=GENERATED_PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )

    def _password(self, name: str, configured: SecretStr | None) -> pulumi.Output[str]:
        if configured is not None:
            return pulumi.Output.secret(configured.get_secret_value())
        return pulumi.Output.secret(self._generated(name).result)
