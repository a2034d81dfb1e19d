"""StackCredentials: the passwords and keys of a stack, from `--secret` config or pulumi-random."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pydantic import SecretStr

from components import component_type
from escluster.config import Security
from escluster.scripts import KIBANA_KEYSTORE_ENTRIES

GENERATED_PASSWORD_LENGTH = 32
# Kibana needs encryption keys of at least 32 characters, the same on every instance.
KIBANA_KEY_NAMES = ("security", "saved-objects", "reporting")


class StackCredentials(pulumi.ComponentResource):
    elastic_password: pulumi.Output[str]
    kibana_system_password: pulumi.Output[str]
    kibana_encryption_keys: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, security: Security, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(component_type("StackCredentials"), name, None, opts)
        self.elastic_password = self._password(f"{name}-elastic", security.elastic_password)
        self.kibana_system_password = self._password(f"{name}-kibana-system", security.kibana_system_password)
        self.kibana_encryption_keys = {
            key: self._password(f"{name}-kibana-{key}-key", None) for key in KIBANA_KEY_NAMES
        }
        self.register_outputs({})

    @property
    def kibana_keystore(self) -> dict[str, pulumi.Output[str]]:
        """Kibana keystore entry → its value: the kibana_system password and the encryption keys."""
        keys = self.kibana_encryption_keys
        values = (self.kibana_system_password, keys["security"], keys["saved-objects"], keys["reporting"])
        return dict(zip(KIBANA_KEYSTORE_ENTRIES, values, strict=True))

    def _password(self, name: str, configured: SecretStr | None) -> pulumi.Output[str]:
        if configured is not None:
            return pulumi.Output.secret(configured.get_secret_value())
        # Letters and digits only: the value travels through files, JSON and curl config unquoted-safe.
        generated = random.RandomPassword(
            name, length=GENERATED_PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        return pulumi.Output.secret(generated.result)
