"""StackCredentials: the passwords and keys of a stack, from `--secret` config or pulumi-random."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from components import component_type
from escluster.config import Security

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
        self.register_outputs({})

    def _password(self, name: str, configured: SecretStr | None) -> pulumi.Output[str]:
        if configured is not None:
            return pulumi.Output.secret(configured.get_secret_value())
        # Letters and digits only: the value travels through files, JSON and curl config unquoted-safe.
        generated = random.RandomPassword(
            name, length=GENERATED_PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        return pulumi.Output.secret(generated.result)
