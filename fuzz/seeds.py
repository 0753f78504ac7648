#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ from the protocol reference's worked
transcripts (shared/protocol/vectors/transcripts.py prints them), plus a few
hand-made hostile inputs and P2P packets built to the layout in
shared/protocol/file-transfer.md.

    python3 fuzz/seeds.py [path/to/shared/protocol]

The corpora are committed; run this again only when the reference changes.
"""
import pathlib
import re
import struct
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
REFERENCE = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "protocol"
CORPUS = HERE / "corpus"
DIALECTS = [f"MSNP{n}" for n in range(2, 13)]  # the order of msnp::Dialect::ALL


def transcript_sections():
    """[(title, [(side, line_bytes, payload_bytes_or_None)])] from the transcripts."""
    text = subprocess.run([sys.executable, str(REFERENCE / "vectors" / "transcripts.py")],
                          check=True, capture_output=True, text=True).stdout
    sections, current = [], None
    for row in text.splitlines():
        if row.startswith("--- "):
            current = (row.strip("- ").strip(), [])
            sections.append(current)
        elif re.match(r"^[CS]: ", row) and current is not None:
            current[1].append([row[0], row[3:].encode(), None])
        elif row.startswith("    ") and current and current[1]:
            piece = row[4:]
            chunk = piece[:-4].encode() + b"\r\n" if piece.endswith("\\r\\n") else piece.encode()
            last = current[1][-1]
            last[2] = (last[2] or b"") + chunk
    return sections


def wire(command):
    _, line, payload = command
    return line + b"\r\n" + (payload or b"")


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")).write_bytes(data)


def p2p_packet(session=0, ident=1, offset=0, total=None, flags=0, payload=b"", footer=0):
    total = len(payload) if total is None else total
    head = struct.pack("<IIQQIIIIQ", session, ident, offset, total, len(payload), flags, 0, 0, 0)
    return head + payload + struct.pack(">I", footer)


def main():
    sections = transcript_sections()
    login = {"VER", "INF", "CVR", "USR"}
    for n, (title, commands) in enumerate(sections):
        client = [c for c in commands if c[0] == "C"]
        server = [c for c in commands if c[0] == "S"]
        for i, c in enumerate(client):
            write("command_parser", f"{n:02}-{title}-{i:02}", wire(c))
        # The server's lines too: the target reads every input as replies.
        for i, c in enumerate(server):
            write("command_parser", f"{n:02}-{title}-server-{i:02}", wire(c))
        write("framing", f"{n:02}-client-{title}", b"\x05" + b"".join(wire(c) for c in client))
        write("framing", f"{n:02}-server-{title}", b"\x03" + b"".join(wire(c) for c in server))
        for i, c in enumerate(commands):
            if c[2]:
                write("mime", f"{n:02}-{title}-{i:02}", c[2])
        dialect = re.match(r"(MSNP\d+)", title)
        after_login = [c for c in client if c[1].split(b" ")[0].decode() not in login]
        if dialect and after_login:
            selector = bytes([DIALECTS.index(dialect.group(1))])
            stream = b"".join(wire(c) for c in after_login)
            if "switchboard" in title:
                write("session", f"{n:02}-{title}", selector + b"\xff" + stream)
            else:
                write("session", f"{n:02}-{title}", selector + stream)

    # Hostile shapes the transcripts do not show.
    hostile = {
        "payload-over-limit": b"MSG 1 N 99999\r\n",
        "negative-length": b"MSG 1 N -1\r\nx",
        "trid-max": b"SYN 4294967295 0\r\n",
        "trid-overflow": b"SYN 4294967296 0\r\n",
        "control-name": b"REA 5 alice@example.com Al%00ice\r\n",
        "invalid-utf8": b"ADD 6 FL bob@example.com \xff\xfe\r\n",
        "pipelined": b"PNG\r\n" * 50,
        "bare-lf": b"CHG 7 NLN\nCHG 8 BSY\r\n",
    }
    for name, data in hostile.items():
        write("command_parser", f"hostile-{name}", data)
        write("framing", f"hostile-{name}", b"\x00" + data)
        write("session", f"hostile-{name}", b"\x00" + data)
        write("session", f"hostile-sb-{name}", b"\x09\xff" + data)

    header = (b"Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=alice%40hotmail.com,"
              b"pwd=p%40ss%2Cword,lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,"
              b"ct=1062764429,kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619")
    write("passport", "authorization", header)
    write("passport", "raw-password", header.replace(b"p%40ss%2Cword", b"p@ss,word"))
    rst = (b'<?xml version="1.0"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header><Security><UsernameToken><Username>alice@hotmail.com'
           b'</Username><Password>secret</Password></UsernameToken></Security></Header><Body>'
           b'<RequestMultipleSecurityTokens><RequestSecurityToken Id="RST0"><AppliesTo><EndpointReference>'
           b'<Address>http://Passport.NET/tb</Address></EndpointReference></AppliesTo></RequestSecurityToken>'
           b'</RequestMultipleSecurityTokens></Body></Envelope>')
    write("passport", "rst", rst)

    write("soap_and_lists", "adl-initial", b'<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>')
    write("soap_and_lists", "adl-reverse", b'<ml><d n="example.com"><c n="alice" l="8" t="1" f="Alice%20A."/></d></ml>')
    write("soap_and_lists", "fqy", b'<ml><d n="example.com"><c n="carol"/></d></ml>')
    ab = (b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>'
          b'<ABAuthHeader xmlns="http://www.msn.com/webservices/AddressBook"><TicketToken>t=a&amp;p=b</TicketToken>'
          b'</ABAuthHeader></soap:Header><soap:Body><ABFindAll xmlns="http://www.msn.com/webservices/AddressBook">'
          b'<abId>00000000-0000-0000-0000-000000000000</abId><deltasOnly>false</deltasOnly></ABFindAll></soap:Body></soap:Envelope>')
    write("soap_and_lists", "abfindall", ab)
    ns = b'xmlns="http://www.msn.com/webservices/AddressBook"'
    ab_change = lambda op: ab.replace(b'<ABFindAll xmlns="http://www.msn.com/webservices/AddressBook"><abId>00000000-0000-0000-0000-000000000000</abId><deltasOnly>false</deltasOnly></ABFindAll>', op)
    write("soap_and_lists", "abcontactadd", ab_change(
        b'<ABContactAdd ' + ns + b'><abId>00000000-0000-0000-0000-000000000000</abId><contacts><Contact><contactInfo>'
        b'<contactType>LivePending</contactType><passportName>bob@example.com</passportName><isMessengerUser>true</isMessengerUser>'
        b'</contactInfo></Contact></contacts><options><EnableAllowListManagement>true</EnableAllowListManagement></options></ABContactAdd>'))
    write("soap_and_lists", "abcontactupdate", ab_change(
        b'<ABContactUpdate ' + ns + b'><contacts><Contact><contactInfo><contactType>Me</contactType><displayName>Al &amp; Co</displayName>'
        b'</contactInfo><propertiesChanged>DisplayName</propertiesChanged></Contact></contacts></ABContactUpdate>'))
    write("soap_and_lists", "abgroupcontactadd", ab_change(
        b'<ABGroupContactAdd ' + ns + b'><groupFilter><groupIds><guid>g1</guid></groupIds></groupFilter><contacts><Contact>'
        b'<contactInfo><passportName>carol@example.com</passportName></contactInfo></Contact></contacts></ABGroupContactAdd>'))
    write("soap_and_lists", "addmember", ab_change(
        b'<AddMember ' + ns + b'><serviceHandle><Id>0</Id><Type>Messenger</Type></serviceHandle><memberships><Membership>'
        b'<MemberRole>Block</MemberRole><Members><Member><Type>Passport</Type><MembershipId>7</MembershipId></Member>'
        b'</Members></Membership></memberships></AddMember>'))
    write("soap_and_lists", "delta", ab_change(
        b'<ABFindAll ' + ns + b'><abView>Full</abView><deltasOnly>true</deltasOnly><lastChange>2026-12-05T10:00:00.2500000+00:00</lastChange></ABFindAll>'))
    write("soap_and_lists", "store2",
          b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>'
          b'<From memberName="alice@example.com" friendlyName="=?utf-8?B?QWxpY2U=?=" xml:lang="en-US" proxy="MSNMSGR" msnpVer="MSNP15" buildVer="8.5.1288.816"/>'
          b'<To memberName="bob@example.com"/><Ticket passport="t=tok&amp;p=x" appid="PROD0119GSJUC$18" lockkey="0123"/>'
          b'<Sequence><MessageNumber>1</MessageNumber></Sequence></soap:Header><soap:Body><MessageType>text</MessageType>'
          b'<Content>MIME-Version: 1.0&#13;&#10;Content-Transfer-Encoding: base64&#13;&#10;&#13;&#10;aGk=</Content></soap:Body></soap:Envelope>')
    write("soap_and_lists", "rsi-delete",
          b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><PassportCookie><t>tok</t><p/>'
          b'</PassportCookie></soap:Header><soap:Body><DeleteMessages><messageIds><messageId>G1</messageId></messageIds>'
          b'</DeleteMessages></soap:Body></soap:Envelope>')
    write("soap_and_lists", "getprofile",
          b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><StorageUserHeader '
          b'xmlns="http://www.msn.com/webservices/storage/w10"><Puid>0</Puid><TicketToken>t=a&amp;p=b</TicketToken>'
          b'</StorageUserHeader></soap:Header><soap:Body><UpdateProfile xmlns="http://www.msn.com/webservices/storage/w10">'
          b'<profile><ResourceID>1!106</ResourceID><ExpressionProfile><DisplayName>Al</DisplayName><PersonalStatus>hi'
          b'</PersonalStatus></ExpressionProfile></profile></UpdateProfile></soap:Body></soap:Envelope>')
    write("soap_and_lists", "bomb", b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>')
    write("soap_and_lists", "blob", b"HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAECAwQFBgcI")

    slp = (b"INVITE MSNMSGR:bob@example.com MSNSLP/1.0\r\nTo: <msnmsgr:bob@example.com>\r\n"
           b"From: <msnmsgr:alice@example.com>\r\nVia: MSNSLP/1.0/TLP ;branch={33517CE4-02FC-4428-B6F4-39927229B722}\r\n"
           b"CSeq: 0 \r\nCall-ID: {9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}\r\nMax-Forwards: 0\r\n"
           b"Content-Type: application/x-msnmsgr-sessionreqbody\r\nContent-Length: 4\r\n\r\nab\r\n\x00")
    write("p2p", "slp-invite", p2p_packet(payload=slp))
    write("p2p", "ack", p2p_packet(ident=2, flags=2, total=len(slp)))
    write("p2p", "first-chunk", p2p_packet(session=7, total=5000, flags=0x01000030, payload=b"x" * 1202, footer=2))
    write("p2p", "bad-offset", p2p_packet(offset=2**63, total=1, payload=b"y"))

    # XMPP: the first byte picks the piece size, the rest follows a stream header.
    write("xmpp_stream", "message", b"\x03<message to='bob@example.com' type='chat'><body>hi &amp; bye</body>"
          b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    write("xmpp_stream", "iqs", b"\x07<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource>"
          b"</bind></iq><iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq> \n<presence><show>away</show>"
          b"<status>out</status></presence></stream:stream>")
    write("xmpp_stream", "sasl", b"\x01<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
          b"biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>")
    write("xmpp_stream", "scram-first", b"\x00n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    write("xmpp_stream", "scram-final", b"\x00c=biws,r=fyko+d2lbbFgONRv9qkxdawLnonce,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
    write("xmpp_stream", "entities", b"\x05<!DOCTYPE x [<!ENTITY a 'aaaa'>]><message><body>&a;</body></message>")
    # Found by CI's fuzz run: an element in no namespace (written back, it
    # fell into its parent's).
    write("xmpp_stream", "unqualified", b"\x01<auth xmlns=''>biws</auth><message><body xmlns=''>hi</body></message>")


    # The web messenger: frames a page sends.
    write("webchat_frame", "hello", b'{"type":"hello","version":1,"page":"abc","last_seen":4}')
    write("webchat_frame", "send", b'{"type":"send","id":"m1","to":"bob@example.com","text":"hi \\u00e9 :)"}')
    write("webchat_frame", "group", b'{"type":"group_start","id":"g","invite":["a@example.com","b@example.com"]}')
    write("webchat_frame", "state", b'{"type":"set_state","state":"brb"}')
    write("webchat_frame", "deep", b'{"type":"ack","seq":' + b"[" * 200 + b"]" * 200 + b"}")


if __name__ == "__main__":
    main()
