#!/usr/bin/env python3
"""Recomputes acl_tickets.json: golden vectors for ticket-gated ACLs.

Every hash is the official `b3sum` run over preimage bytes built here by
hand from the encodings in docs/modules.md ("Ticket-gated committees") and
docs/groups.md ("Ticket-gated members"), independently of the C code; the
unit tests (test_identity.c) check the implementation against the result.
The preimages are kept in the file too, so a reader can rerun
`xxd -r -p | b3sum` on any of them.

    python3 tests/data/vectors/acl_tickets.py > tests/data/vectors/acl_tickets.json
"""
import json
import subprocess
import sys


def b3(data: bytes) -> bytes:
    out = subprocess.run(["b3sum", "--no-names", "--raw"], input=data,
                         capture_output=True, check=True).stdout
    assert len(out) == 32
    return out


def id_of(s: str) -> bytes:
    if len(s) == 64 and all(c in "0123456789abcdefABCDEF" for c in s):
        return bytes.fromhex(s)
    return b3(s.encode())


def derive(x: bytes, label: bytes) -> bytes:
    return b3(x + label)


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


V = b"\x01"
SEED = "5eed" + "11" * 30
KEY1 = "a1" * 32
KEY2 = "b2" * 32
MRTD = "".join("%02x" % i for i in range(48))


def acl_preimage(issuers, mrtds, tickets):
    p = b"acl|" + V + u32(len(issuers))
    for s in issuers:
        p += id_of(s)
    p += u32(len(mrtds))
    for m in mrtds:
        p += bytes.fromhex(m)
    if tickets is None:
        return p
    p += b"tickets|"
    if tickets["issuer"] == "coalition":
        p += b"\x00"
    else:
        keys = tickets["keys"]
        p += b"\x01" + id_of(tickets["issuer"]) + u32(len(keys))
        for k in keys:
            p += bytes.fromhex(k)
    aud = tickets.get("audience", "").encode()
    p += u32(tickets.get("max_lifetime_s", 0)) + u32(len(aud)) + aud
    return p


def jwt_signature(keys, issuers, audiences, max_lifetime_s):
    """include/mosaik/jwt.h: the validator signature chain."""
    s = id_of("mosaik.tickets.jwt.v1")
    for k in keys:
        s = derive(s, b"EdDSA")
        s = derive(s, derive(id_of("eddsa"), k))
    s = derive(s, b"\x00")  # non-expiring tickets refused
    s = derive(s, ",".join(issuers).encode())
    s = derive(s, ",".join(audiences).encode())
    s = derive(s, b"")  # subject: the peer
    s = derive(s, u64(max_lifetime_s))
    s = derive(s, u64(0))
    return s


def main():
    own = {"issuer": "coalition", "audience": "atlas-committee",
           "max_lifetime_s": 86400}
    other = {"issuer": "other-issuer", "keys": [KEY1, KEY2]}
    acl_own = {"issuers": [SEED], "mrtds": [], "tickets": own}
    acl_other = {"issuers": [SEED], "mrtds": [MRTD], "tickets": other}
    plain = {"issuers": [SEED], "mrtds": []}

    out = {"_comment": "computed by acl_tickets.py with b3sum over the "
                       "preimage bytes; see docs/modules.md"}
    for name, acl in (("acl_coalition_issuer", acl_own),
                      ("acl_other_issuer", acl_other),
                      ("acl_plain", plain)):
        pre = acl_preimage(acl["issuers"], acl["mrtds"], acl.get("tickets"))
        out[name] = {"acl": acl, "preimage": pre.hex(),
                     "acl_fp": b3(pre).hex()}

    # A coalition whose Atlas committee is ticket-gated by the coalition's
    # own issuer, and the Atlas committee's GroupId.
    coalition = {
        "name": "ticketed.coalition",
        "lattices": [],
        "organisms": [{"role": "oracle", "instance": "price-feed.eur"}],
        "confluences": [{"name": "atlas", "lattices": [],
                         "organisms": ["price-feed.eur"],
                         "content": "atlas/v1", "acl": acl_own}],
        "ticket_issuer": {"name": "ticketed-tickets",
                          "acl": {"issuers": [KEY1], "mrtds": []}},
    }
    organism = b3(b"instance|price-feed.eur|" + id_of("mosaik.universe"))
    acl_fp = bytes.fromhex(out["acl_coalition_issuer"]["acl_fp"])
    atlas_fp = b3(b"confluence|" + V + b"|atlas" + organism +
                  id_of("atlas/v1") + acl_fp)
    issuer_acl = b3(acl_preimage([KEY1], [], None))
    issuer_fp = b3(b"tickets|" + V + b"|ticketed-tickets" + issuer_acl)
    seed = b3(b"coalition|" + V + b"|ticketed.coalition")
    root = b3(seed + organism + atlas_fp + issuer_fp)
    tickets_root = derive(root, b"tickets")
    module_root = derive(derive(root, b"module"), b"atlas")
    committee = derive(module_root, b"committee")
    # docs/groups.md: the base, then the ticket-gated fold (defaults:
    # election 1000 ms, heartbeat 50 ms, max_voters 5; no validators).
    g = b3(committee)
    g = derive(g, b"libraft/1" + u32(1000) + u32(50))
    g = derive(g, id_of("coalition.atlas/1"))
    policy = jwt_signature([bytes.fromhex(KEY1)], [tickets_root.hex()],
                           ["atlas-committee"], 86400)
    fold = b"tickets" + u32(5) + policy + u32(1) + bytes.fromhex(SEED)
    group = derive(g, fold)
    out["coalition"] = {
        "config": coalition,
        "atlas_fingerprint": atlas_fp.hex(),
        "coalition_id": root.hex(),
        "tickets_root": tickets_root.hex(),
        "atlas_root": module_root.hex(),
        "atlas_committee_root": committee.hex(),
        "atlas_group_base": g.hex(),
        "atlas_policy_signature": policy.hex(),
        "atlas_group_fold": fold.hex(),
        "atlas_group_id": group.hex(),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
