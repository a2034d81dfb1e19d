"""The certificate lifecycle as render sequences: a CA rotation (`security.ca_generation` raised by one,
then three `up`s) and renewals, checked for trust at every moment of every step.

The trust model. Elasticsearch builds a PKIX trust manager from every certificate of its
`certificate_authorities` files (tests/contracts/test_trust_bundles.py runs that code path in a JVM), so
a peer's certificate is trusted when it was signed by the key of a CA in the bundle under that CA's
subject: a CA renewed with the same key and subject still vouches for what it signed before. Here, a CA
is its key and subject (the SelfSignedCert's `privateKeyPem` and `commonName`), a node certificate its
issuer's (the LocallySignedCert's `caPrivateKeyPem` and the subject of its `caCertPem`). Every node
reads the files its `elasticsearch.yml` names, Kibana the one its `kibana.yml` names, the setup step and
the roll's tasks the CA on their standard input.

A step from render P to render N: on Docker and Swarm the nodes change one at a time, on Kubernetes the
kubelet updates each pod's files at its own moment; so any subset of the nodes may run N's files while
the others run P's, Kibana may run either, and the tasks run N's. Every mixture must keep every pair of
nodes and every client trusting every node.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from components.shared import certificates as certificates_module
from escluster import changes
from escluster.changes import CaPlan
from escluster.state import ClusterState
from review.mockrun import MOCK_NOW
from tests import rules, rules_k8s, rules_swarm
from tests.conftest import rendered
from tests.harness import PROJECT, Registration, Render, read_stack_config, render, render_failure
from tests.test_rolling import ancestors, check_one_at_a_time, restarted

SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----", re.S)
SECURITY = f"{PROJECT}:security"
TRANSPORT_CA = "xpack.security.transport.ssl.certificate_authorities"
TRANSPORT_CERT = "xpack.security.transport.ssl.certificate"
HTTP_CA = "xpack.security.http.ssl.certificate_authorities"
KIBANA_CA = "elasticsearch.ssl.certificateAuthorities"


@dataclass(frozen=True)
class Authority:
    """A CA as a verifier sees it: its key and its subject."""

    key: str
    subject: str


@dataclass(frozen=True)
class Party:
    """What one participant trusts, and (a node) the issuer of the certificate it presents."""

    trusts: frozenset[Authority]
    presents: Authority | None = None


class Certificates:
    """Every CA and node certificate of some renders, by PEM."""

    def __init__(self, *renders: Render) -> None:
        self.authorities: dict[str, Authority] = {}
        self.issuers: dict[str, Authority] = {}
        for result in renders:
            for ca in result.of_type(SELF_SIGNED):
                authority = Authority(ca.inputs["privateKeyPem"], ca.inputs["subject"]["commonName"])
                self.authorities[ca.outputs["cert_pem"].strip()] = authority
        for result in renders:
            for leaf in result.of_type(LOCALLY_SIGNED):
                issuer = self.authorities[leaf.inputs["caCertPem"].strip()]
                assert issuer.key == leaf.inputs["caPrivateKeyPem"], f"{leaf.name}: signed by another key"
                self.issuers[leaf.outputs["cert_pem"].strip()] = issuer

    def bundle(self, text: str) -> frozenset[Authority]:
        blocks = PEM_BLOCK.findall(text)
        assert blocks, "a trust bundle without a certificate"
        assert all(block in self.authorities for block in blocks), "a trust bundle holds an unknown certificate"
        return frozenset(self.authorities[block] for block in blocks)

    def issuer(self, text: str) -> Authority:
        blocks = PEM_BLOCK.findall(text)
        assert len(blocks) == 1 and blocks[0] in self.issuers, "not one node certificate"
        return self.issuers[blocks[0]]


def parties(result: Render, certs: Certificates) -> tuple[dict[str, Party], dict[str, Party]]:
    """The nodes, and the clients (Kibana instances, the setup step, the roll's tasks), of one render."""
    nodes: dict[str, Party] = {}
    clients: dict[str, Party] = {}
    if result.of_type(rules.CONTAINER):
        for container in rules.es_containers(result):
            files, settings = rules.uploads(container), rules.es_settings(container)
            nodes[container.name] = node_party(certs, files, settings)
        for container in rules.kibana_containers(result):
            clients[container.name] = kibana_party(certs, rules.uploads(container))
    elif result.of_type(rules_swarm.SERVICE):
        for service in result.of_type(rules_swarm.SERVICE):
            files = {path: content for path, (content, _) in rules_swarm.files(result, service).items()}
            if rules.ES_CONFIG in files:
                nodes[service.name] = node_party(certs, files, yaml.safe_load(files[rules.ES_CONFIG]))
            elif rules.KIBANA_CONFIG in files:
                clients[service.name] = kibana_party(certs, files)
    else:
        nodes, clients = kubernetes_parties(result, certs)
    for task in result.of_type(rules.COMMAND):
        stdin = str(task.inputs.get("stdin") or "")
        if PEM_BLOCK.search(stdin):
            clients[task.name] = Party(certs.bundle(stdin))
    return nodes, clients


def node_party(certs: Certificates, files: Mapping[str, str], settings: Mapping[str, Any]) -> Party:
    assert settings[TRANSPORT_CA] == settings[HTTP_CA], "transport and HTTP trust different files"
    (ca_file,) = settings[TRANSPORT_CA]
    return Party(certs.bundle(files[ca_file]), certs.issuer(files[settings[TRANSPORT_CERT]]))


def kibana_party(certs: Certificates, files: Mapping[str, str]) -> Party:
    (ca_file,) = yaml.safe_load(files[rules.KIBANA_CONFIG])[KIBANA_CA]
    return Party(certs.bundle(files[ca_file]))


def kubernetes_parties(result: Render, certs: Certificates) -> tuple[dict[str, Party], dict[str, Party]]:
    """Each pod reads its group's certificate Secret (mounted as a directory: `ca.crt`, `<pod>.crt`)."""
    nodes: dict[str, Party] = {}
    for secret in result.of_type(rules_k8s.SECRET):
        data = secret.inputs.get("stringData") or {}
        if "ca.crt" in data and any(key.endswith(".key") for key in data):
            for key in data:
                if key.endswith(".crt") and key != "ca.crt":
                    pod = key.removesuffix(".crt")
                    nodes[pod] = Party(certs.bundle(data["ca.crt"]), certs.issuer(data[key]))
    clients = {
        item.name: Party(certs.bundle((item.inputs.get("stringData") or item.inputs.get("data") or {})["ca.crt"]))
        for item in result.of_type(rules_k8s.CONFIG_MAP) + result.of_type(rules_k8s.SECRET)
        if "ca.crt" in (item.inputs.get("stringData") or item.inputs.get("data") or {})
        and item.name not in nodes
        and not any(key.endswith(".key") for key in (item.inputs.get("stringData") or {}))
    }
    return nodes, clients


def broken_trust(before: Render, after: Render) -> list[str]:
    """Every way trust fails on the way from `before` to `after`: for each mixture of nodes on their old
    and new files, a node or client that does not trust a node's certificate. Clients: Kibana on either
    render's files, this run's setup step and tasks, and a client holding either render's exported CA."""
    certs = Certificates(before, after)
    old_nodes, old_clients = parties(before, certs)
    new_nodes, new_clients = parties(after, certs)
    clients = {
        **{f"{name} (old)": party for name, party in old_clients.items() if "kibana" in name},
        **{f"{name} (new)": party for name, party in new_clients.items()},
        "ca_certificate (old)": Party(certs.bundle(before.outputs["ca_certificate"])),
        "ca_certificate (new)": Party(certs.bundle(after.outputs["ca_certificate"])),
    }
    kept = sorted(set(old_nodes) & set(new_nodes))
    added = {name: node for name, node in new_nodes.items() if name not in old_nodes}  # on new files only
    assert kept and any("kibana" in name for name in clients) and any("setup" in name for name in clients)
    problems = set()
    for count in range(len(kept) + 1):
        for changed in itertools.combinations(kept, count):
            running = {name: new_nodes[name] if name in changed else old_nodes[name] for name in kept} | added
            for name, node in running.items():
                verifiers = {**{n: p for n, p in running.items() if n != name}, **clients}
                for verifier_name, verifier in verifiers.items():
                    if node.presents not in verifier.trusts:
                        problems.add(f"{verifier_name} does not trust {name} (new: {', '.join(changed) or 'none'})")
    return sorted(problems)


# ---- the sequences ----------------------------------------------------------------------------------------


def edited(stack: str, **security: Any) -> dict[str, Any]:
    config = read_stack_config(stack)
    config[SECURITY] = {**(config.get(SECURITY) or {}), **security}
    return config


def formed(stack: str) -> Render:
    return render(stack, read_stack_config(stack), previous=rendered(stack).outputs)


def rotation(stack: str) -> list[Render]:
    """The formed cluster, the three steps to CA generation 2, and the `up` after them."""
    results = [formed(stack)]
    for _ in range(4):
        results.append(render(stack, edited(stack, ca_generation=2), previous=results[-1].outputs))
    return results


ROTATIONS: dict[str, list[Render]] = {}


def rotated(stack: str) -> list[Render]:
    if stack not in ROTATIONS:
        ROTATIONS[stack] = rotation(stack)
    return ROTATIONS[stack]


STACKS = ["lab", "staging", "prod", "k8s-groups"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_step_of_a_ca_rotation_keeps_every_node_and_client_trusting_every_node(stack: str) -> None:
    for before, after in itertools.pairwise(rotated(stack)):
        assert broken_trust(before, after) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_rotation_goes_through_its_three_steps(stack: str) -> None:
    states = [result.outputs["cluster_state"]["ca"] for result in rotated(stack)]
    assert states == [
        {"trusted": [1], "issuing": 1},
        {"trusted": [1, 2], "issuing": 1},
        {"trusted": [1, 2], "issuing": 2},
        {"trusted": [2], "issuing": 2},
        {"trusted": [2], "issuing": 2},
    ]
    certs = Certificates(*rotated(stack))
    nodes = parties(rotated(stack)[-1], certs)[0]
    assert {party.presents.subject for party in nodes.values() if party.presents} == {f"{cluster(stack)} CA 2"}


def cluster(stack: str) -> str:
    return str(read_stack_config(stack)[f"{PROJECT}:cluster"]["name"])


@pytest.mark.parametrize("stack", ["lab", "staging"])
def test_each_step_restarts_one_node_at_a_time(stack: str) -> None:
    steps = rotated(stack)
    for before, after in itertools.pairwise(steps[:4]):
        assert restarted(before, after) == check_one_at_a_time(after)
    assert restarted(steps[3], steps[4]) == [], "the `up` after the rotation restarts nodes"


@pytest.mark.parametrize("stack", ["prod", "k8s-groups"])
def test_on_kubernetes_no_pod_restarts(stack: str) -> None:
    """The certificates are files of a Secret the kubelet updates in place; Elasticsearch reloads them."""
    for before, after in itertools.pairwise(rotated(stack)):
        templates = {s.name: s.inputs["spec"]["template"] for s in before.of_type(rules_k8s.STATEFULSET)}
        assert {s.name: s.inputs["spec"]["template"] for s in after.of_type(rules_k8s.STATEFULSET)} == templates


def check_task(result: Render, suffix: str) -> Registration | None:
    return next((c for c in result.of_type(rules.COMMAND) if c.name.endswith(suffix)), None)


def readers_of_the_bundle(result: Render) -> list[Registration]:
    """Everything that reads the trust bundle: the nodes, Kibana, the setup step, the roll's tasks."""
    bundle = PEM_BLOCK.findall(result.outputs["ca_certificate"])
    return [
        r
        for r in result.resources
        if r.custom and any(b in text for _, text in rules.strings_in(r.inputs) for b in bundle)
    ]


def check_old_ca_leaves_after_the_issuer_check(result: Render) -> None:
    check = check_task(result, "-issuer-check")
    assert check is not None, "no issuer check"
    readers = readers_of_the_bundle(result)
    assert len(readers) > 5, "the bundle's readers were not found"
    for reader in readers:
        if reader.type not in (SELF_SIGNED, LOCALLY_SIGNED) and reader is not check:
            assert check.urn in ancestors(result, reader), f"{reader.name} may get the new bundle before the check"


@pytest.mark.parametrize("stack", STACKS)
def test_the_old_ca_leaves_only_after_every_node_presents_the_new_one(stack: str) -> None:
    step3 = rotated(stack)[3]
    check_old_ca_leaves_after_the_issuer_check(step3)
    for other in (rotated(stack)[1], rotated(stack)[2], rotated(stack)[4]):
        assert check_task(other, "-issuer-check") is None


def test_a_bundle_that_does_not_wait_for_the_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificates_module, "after", lambda check, value: value)
    step3 = render("lab", edited("lab", ca_generation=2), previous=rotated("lab")[2].outputs)
    with pytest.raises(AssertionError, match="may get the new bundle before the check"):
        check_old_ca_leaves_after_the_issuer_check(step3)


@pytest.mark.parametrize("stack", ["prod", "k8s-groups"])
def test_kubernetes_issues_from_the_new_ca_only_once_every_pod_trusts_it(stack: str) -> None:
    step2 = rotated(stack)[2]
    check = check_task(step2, "-trust-check")
    assert check is not None
    new_certs = [s for s in step2.of_type(rules_k8s.SECRET) if s.name.endswith("-certs")]
    assert new_certs and all(check.urn in ancestors(step2, secret) for secret in new_certs)
    assert check_task(rotated("lab")[2], "-trust-check") is None, "Docker restarts a node with both files at once"


def test_the_issuer_check_asks_the_nodes_that_run() -> None:
    """A node added in the last step does not exist yet: the check asks the nodes of the last state."""
    config = edited("lab-groups", ca_generation=2)
    first = render("lab-groups", config, previous=formed("lab-groups").outputs)
    second = render("lab-groups", config, previous=first.outputs)
    config[f"{PROJECT}:cluster"]["node_groups"][1]["count"] = 4
    third = render("lab-groups", config, previous=second.outputs)
    check = check_task(third, "-issuer-check")
    assert check is not None
    script = rules.docker_argv(check.inputs["create"])[-1]
    urls = re.findall(r"https://\S+", script.split("for url in", 1)[1].split(";", 1)[0])
    assert len(rules.es_containers(third)) == 8 and len(urls) == 7, urls


def test_a_one_step_rotation_breaks_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counter-test: trust and issue from the new CA at once, as a plain new key would."""

    def at_once(generation: int, previous: ClusterState | None) -> CaPlan:
        return CaPlan((generation,), generation)

    monkeypatch.setattr(changes, "ca_plan", at_once)
    before = formed("lab")
    after = render("lab", edited("lab", ca_generation=2), previous=before.outputs)
    problems = broken_trust(before, after)
    assert "lab-es-1 does not trust lab-es-0 (new: lab-es-0)" in problems
    assert any(p.startswith("lab-kibana-0 (old) does not trust") for p in problems)


# ---- renewals ---------------------------------------------------------------------------------------------


def test_a_renewed_ca_keeps_trust_and_rolls_one_node_at_a_time() -> None:
    """In its last 30 days the CA is made anew from the same key: every node certificate is re-signed and
    every node restarts, in turn, and old and new certificates chain to either CA certificate."""
    before = formed("lab")
    after = render("lab", read_stack_config("lab"), previous=before.outputs, renewed={"lab-certs-ca"})
    assert broken_trust(before, after) == []
    assert restarted(before, after) == check_one_at_a_time(after) == ["lab-es-0", "lab-es-1", "lab-es-2"]


def test_a_ca_renewed_with_a_new_key_would_break_trust() -> None:
    """The counter-test of the renewal: only the same key keeps what the CA signed trusted."""
    before = formed("lab")
    after = render(
        "lab", read_stack_config("lab"), previous=before.outputs, renewed={"lab-certs-ca", "lab-certs-ca-key"}
    )
    assert broken_trust(before, after) != []


@pytest.mark.parametrize("stack", ["lab", "staging", "prod"])
def test_a_renewed_node_certificate_keeps_trust(stack: str) -> None:
    before = formed(stack)
    node = sorted(parties(before, Certificates(before))[0])[0]
    after = render(stack, read_stack_config(stack), previous=before.outputs, renewed={f"{node}-cert"})
    assert broken_trust(before, after) == []


# ---- refusals, expiry -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["lab-groups", "k8s-groups"])
def test_nodes_added_in_the_middle_of_a_rotation_trust_and_are_trusted(stack: str) -> None:
    """A node added while the certificates are re-issued (step 2) starts on the new CA's certificate and
    the two-CA bundle; every running node, old files or new, must trust it and it them."""

    def more_data(config: dict[str, Any]) -> dict[str, Any]:
        groups = config[f"{PROJECT}:cluster"]["node_groups"]
        grown = [{**g, "count": g["count"] + 1} if g["name"] == "data" else g for g in groups]
        return {**config, f"{PROJECT}:cluster": {**config[f"{PROJECT}:cluster"], "node_groups": grown}}

    results = [formed(stack)]
    results.append(render(stack, edited(stack, ca_generation=2), previous=results[-1].outputs))
    for _ in range(3):
        results.append(render(stack, more_data(edited(stack, ca_generation=2)), previous=results[-1].outputs))
    certs = Certificates(*results)
    assert len(parties(results[2], certs)[0]) == len(parties(results[1], certs)[0]) + 1
    for before, after in itertools.pairwise(results):
        assert broken_trust(before, after) == []


@pytest.mark.parametrize(
    ("previous_step", "generation", "message"),
    [
        (0, 3, "rotate one generation at a time (1 to 2)"),
        (4, 1, "1 is older than the CA in use (2); it only goes up"),
        (1, 3, "the rotation to generation 2 is under way; keep 2 until it is done"),
        (2, 1, "the rotation to generation 2 is under way"),
    ],
)
def test_ca_generation_changes_that_are_refused(previous_step: int, generation: int, message: str) -> None:
    error, partial = render_failure(
        "lab", edited("lab", ca_generation=generation), previous=rotated("lab")[previous_step].outputs
    )
    assert message in str(error) and "security.ca_generation" in str(error)
    assert partial.resources == []


@pytest.mark.parametrize("stack", ["lab", "prod"])
def test_the_stack_exports_when_each_certificate_expires(stack: str) -> None:
    days = int((read_stack_config(stack).get(SECURITY) or {}).get("cert_validity_days", 1095))
    end = (MOCK_NOW + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expiry = rendered(stack).outputs["certificate_expiry"]
    nodes = parties(rendered(stack), Certificates(rendered(stack)))[0]
    assert expiry == {"ca": {"1": end}, "nodes": dict.fromkeys(sorted(nodes), end)}
    assert set(rotated(stack)[2].outputs["certificate_expiry"]["ca"]) == {"1", "2"}


def test_every_bundle_is_whole_pem_certificates() -> None:
    """What the JVM's CertificateFactory and OpenSSL read (tests/contracts/test_trust_bundles.py): each
    certificate a complete block on its own lines."""
    bundle = rotated("lab")[1].outputs["ca_certificate"]
    assert bundle.endswith("-----END CERTIFICATE-----\n")
    assert "----------" not in bundle and len(PEM_BLOCK.findall(bundle)) == 2


@pytest.mark.parametrize("stack", ["lab", "k8s-groups"])
def test_a_rotation_gives_every_node_a_new_key(stack: str) -> None:
    """pulumi-tls signs the public key of the request (terraform-provider-tls resource_locally_signed_cert.go),
    which comes from the node's private key: a rotation after a leak must replace the keys too, the old ones
    lived in the same state as the leaked CA key."""
    steps = rotated(stack)
    keys = [
        {
            key.name.rsplit("-key", 1)[0]: key.outputs["private_key_pem"]
            for key in step.of_type("tls:index/privateKey:PrivateKey")
            if "-ca-key" not in key.name
        }
        for step in steps
    ]
    assert keys[0] and keys[0] == keys[1], "introducing the new CA changes no node key"
    assert all(keys[2][node] != keys[1][node] for node in keys[1]), "the re-issued certificates keep old keys"
