"""Resource policies on what a workload runs: TLS on, no plain-text passwords, a heap that fits its memory
(docs/rules.md "Security" and "Memory and OS"). Each judges one resource from its own inputs, in a preview
before anything is created and again just before the resource's step in `pulumi up`."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs

from elastic_policy.workloads import HEAP_OPTIONS, containers, elasticsearch_settings, heap_sizes, kibana_settings

MAX_HEAP = 31 * 2**30  # compressed object pointers stop a little below 32 GiB
SECRET_NAME = re.compile(r"password|passwd|secret|token|private_?key|encryption_?key|api_?key", re.IGNORECASE)
SECRET_SOURCE = "secretKeyRef"
TLS_LAYERS = ("http", "transport")


def check_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for settings in elasticsearch_settings(args.resource_type, args.props):
        if settings.get("xpack.security.enabled") is not True:
            report("Elasticsearch settings must set xpack.security.enabled: true", None)
        for layer in TLS_LAYERS:
            prefix = f"xpack.security.{layer}.ssl"
            if settings.get(f"{prefix}.enabled") is not True:
                report(f"Elasticsearch settings must set {prefix}.enabled: true", None)
            elif not (settings.get(f"{prefix}.certificate") and settings.get(f"{prefix}.key")) and not settings.get(
                f"{prefix}.keystore.path"
            ):
                report(f"{prefix} has no certificate and key (or keystore)", None)
        if settings.get("xpack.security.transport.ssl.verification_mode") == "none":
            report("transport TLS must verify certificates (verification_mode is none)", None)
    for settings in kibana_settings(args.resource_type, args.props):
        hosts = settings.get("elasticsearch.hosts")
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if not str(host).startswith("https://"):
                report(f"Kibana must reach Elasticsearch over https, not {host}", None)
        if not settings.get("elasticsearch.ssl.certificateAuthorities"):
            report("Kibana must trust the cluster CA (elasticsearch.ssl.certificateAuthorities)", None)
        if settings.get("elasticsearch.ssl.verificationMode") == "none":
            report("Kibana must verify the Elasticsearch certificate (verificationMode is none)", None)


def check_no_plaintext_passwords(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(args.resource_type, args.props):
        for name, variable in container.env.items():
            if not SECRET_NAME.search(name) or name.endswith("_FILE"):
                continue
            if variable.literal is not None:  # written in the resource, even when the preview cannot show it
                report(
                    f"container {container.name}: env {name} holds a literal value; use {name}_FILE with a "
                    "secret file, or a secretKeyRef",
                    None,
                )
            elif isinstance(variable.source, str) and variable.source != SECRET_SOURCE:
                report(f"container {container.name}: env {name} comes from a {variable.source}, not a Secret", None)
    for settings in [
        *elasticsearch_settings(args.resource_type, args.props),
        *kibana_settings(args.resource_type, args.props),
    ]:
        for key, value in settings.items():
            if SECRET_NAME.search(key.rsplit(".", 1)[-1]) and value not in (None, ""):
                report(f"settings file holds {key} in plain text; use the keystore", None)


def check_heap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(args.resource_type, args.props):
        if not container.runs_elasticsearch:
            continue
        limit = container.memory_limit
        if limit is None:
            report(f"Elasticsearch container {container.name} has no memory limit", None)
            continue
        options = container.env.get(HEAP_OPTIONS)
        heap = heap_sizes(options.literal) if options and isinstance(options.literal, str) else {}
        if not heap:
            continue  # Elasticsearch sizes its heap from the limit itself (or the preview does not know the options)
        if heap.get("s") != heap.get("x"):
            report(f"Elasticsearch container {container.name}: -Xms and -Xmx differ ({HEAP_OPTIONS})", None)
        largest = max(heap.values())
        if isinstance(limit, int) and largest * 2 > limit:
            report(
                f"Elasticsearch container {container.name}: heap {largest // 2**20} MiB is more than half of the "
                f"memory limit {limit // 2**20} MiB",
                None,
            )
        if largest > MAX_HEAP:
            report(f"Elasticsearch container {container.name}: heap above 31 GiB", None)
