"""bench/voice: registers every agent's SIP phone with genkan (REGISTER, 401 digest challenge,
REGISTER with the MD5/qop=auth answer, 200), each Contact pointing at the phone sipp that
answers for it. sipp 3.6.1 cannot take per-call digest credentials from its -inf CSV (the
nested [field] keywords inside [authentication ...] are not expanded), hence this script.

usage: register.py GENKAN_SIP_PORT AGENTS_CSV   (lines: agent;password;phone_port)
"""
import hashlib
import re
import socket
import sys
import uuid

port, csv_path = int(sys.argv[1]), sys.argv[2]
server = ("127.0.0.1", port)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(5)
local = sock.getsockname()[1]
md5 = lambda text: hashlib.md5(text.encode()).hexdigest()


def register(agent, password, phone_port, cseq, call_id, auth=""):
    uri = f"sip:127.0.0.1:{port}"
    message = (
        f"REGISTER {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{uuid.uuid4().hex}\r\n"
        f"From: <sip:{agent}@127.0.0.1:{port}>;tag={call_id[:8]}\r\n"
        f"To: <sip:{agent}@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{agent}@127.0.0.1:{phone_port}>\r\n"
        f"{auth}"
        "Max-Forwards: 70\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
    sock.sendto(message.encode(), server)
    while True:
        reply = sock.recv(65535).decode(errors="replace")
        if f"Call-ID: {call_id}" in reply and f"CSeq: {cseq} REGISTER" in reply:
            return reply


count = 0
with open(csv_path) as lines:
    for line in lines:
        fields = line.strip().split(";")
        if len(fields) != 3:
            continue
        agent, password, phone_port = fields
        call_id = uuid.uuid4().hex
        reply = register(agent, password, phone_port, 1, call_id)
        if not reply.startswith("SIP/2.0 401"):
            sys.exit(f"{agent}: expected 401, got {reply.splitlines()[0]}")
        challenge = re.search(r"^WWW-Authenticate: *Digest (.*)$", reply, re.M | re.I).group(1)
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        uri = f"sip:127.0.0.1:{port}"
        ha1 = md5(f"{agent}:{params['realm']}:{password}")
        ha2 = md5(f"REGISTER:{uri}")
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Authorization: Digest username="{agent}", realm="{params["realm"]}", '
            f'nonce="{params["nonce"]}", uri="{uri}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc={nc}, cnonce="{cnonce}"'
            + (f', opaque="{params["opaque"]}"' if "opaque" in params else "")
            + "\r\n"
        )
        reply = register(agent, password, phone_port, 2, call_id, auth)
        if not reply.startswith("SIP/2.0 200"):
            sys.exit(f"{agent}: expected 200, got {reply.splitlines()[0]}")
        count += 1
print(f"registered {count}")
