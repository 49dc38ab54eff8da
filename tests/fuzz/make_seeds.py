#!/usr/bin/python3
"""Write the IPC fuzz seeds (tests/fuzz/seeds/{client_request,worker_result}).

The frames follow ipc/ipc.h: u32 length, u16 type, u16 flags, then fields of
u16 tag, u32 length, bytes.  Re-run after adding tags; the output is committed."""
import os, struct

def field(tag, data):
    if isinstance(data, int):
        data = struct.pack(">I", data)
    elif isinstance(data, str):
        data = data.encode()
    return struct.pack(">HI", tag, len(data)) + data

def u64(tag, v):
    return struct.pack(">HI", tag, 8) + struct.pack(">Q", v)

def frame(mtype, *fields):
    body = struct.pack(">HH", mtype, 0) + b"".join(fields)
    return struct.pack(">I", len(body)) + body

here = os.path.dirname(os.path.abspath(__file__))
SAML = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
seeds = {
    "client_request": {
        "endpoint": frame(0x0100, field(2, "https://127.0.0.1:8443/adfs/services/trust/13/usernamemixed"),
                          field(3, "urn:example:rp"), field(4, 2), field(5, SAML), field(6, 1)),
        "profile": frame(0x0100, field(1, "demo"), field(3, "urn:example:rp")),
        "symmetric": frame(0x0100, field(1, "demo"), field(6, 2), field(7, 256), field(8, 3),
                           field(9, 1), field(10, 1), field(15, 1 << 20), field(16, 5000)),
        "params": frame(0x0100, field(1, "demo"), field(12, "<wst:Claims/>"), field(13, "<x/>"),
                        field(14, "<sct/>"), field(9, 3), field(11, 2), field(17, 1)),
        # accepted shapes, so the fuzzer starts inside the XML checks
        "params_ok": frame(0x0100, field(1, "demo"), field(4, 2),
                           field(12, '<wst:Claims xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" '
                                     'Dialect="http://schemas.xmlsoap.org/ws/2005/05/identity"><c/></wst:Claims>'),
                           field(13, '<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"/><x a="1"/>')),
        "renew": frame(0x0100, field(1, "demo"), field(9, 3), field(10, 2), field(6, 2), field(8, 3), field(7, 256),
                       field(14, '<wsc:SecurityContextToken xmlns:wsc="http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512" '
                                  'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" '
                                  'wsu:Id="sct-1"><wsc:Identifier>urn:uuid:0f3c</wsc:Identifier>'
                                  '<wsc:Instance>urn:uuid:77aa</wsc:Instance></wsc:SecurityContextToken>')),
    },
    "worker_result": {
        "token": frame(0x0203, field(96, 1), field(119, 2), field(120, 12), field(110, "urn:uuid:1"),
                       field(97, "<saml:Assertion/>"), field(98, SAML), field(99, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer"),
                       u64(101, 638000000000000000), u64(102, 638000036000000000), field(103, "urn:example:rp"),
                       field(104, "<wsse:SecurityTokenReference/>"), field(105, "<r/>"), field(106, 0)),
        "proof": frame(0x0203, field(96, 1), field(97, "<t/>"), field(106, 2), field(108, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1"),
                       field(109, os.urandom(0) + b"\x01" * 32), field(100, 256), field(117, "urn:uuid:sct"), field(118, "1")),
        "entropy_enc": frame(0x0203, field(96, 1), field(119, 2), field(120, 12), field(97, "<t/>"), field(106, 2),
                             field(108, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1"), field(100, 256),
                             field(122, '<e:EncryptedKey xmlns:e="http://www.w3.org/2001/04/xmlenc#">'
                                        '<e:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>'
                                        '<e:CipherData><e:CipherValue>AAAA</e:CipherValue></e:CipherData>'
                                        '</e:EncryptedKey>')),
        "fault": frame(0x0203, field(96, 2), field(119, 2), field(120, 12),
                       field(112, "{http://www.w3.org/2003/05/soap-envelope}Sender"),
                       field(113, "{http://docs.oasis-open.org/ws-sx/ws-trust/200512}FailedAuthentication"),
                       field(114, "ID3242: The security token could not be authenticated or authorized."),
                       field(115, "<detail/>")),
        "error": frame(0x0203, field(96, 3), field(121, 2), field(116, "DOCTYPE not allowed")),
        "ready": frame(0x0201),
    },
}
for d, items in seeds.items():
    os.makedirs(os.path.join(here, "seeds", d), exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(here, "seeds", d, name + ".bin"), "wb") as f:
            f.write(data)
