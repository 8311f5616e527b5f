#!/usr/bin/env python3
"""Plays a LocalSend sender the way the apps do, for offers no LocalSend implementation on
PyPI makes: a text message (the text as `preview`, answered 204), folders (paths in
`fileName`) and hostile names, wrong PINs. Python's own TLS, presenting a client certificate
whose SHA-256 is the fingerprint it claims.

    localsend_sender.py HOST PORT CERT KEY SPEC

SPEC is JSON: {"offers": [{"pin": "1234", "files": [{"name": "a/b.txt", "data": "...",
"type": "text/plain", "preview": "...", "sha256": "right" | "wrong"}]}]}. For each offer one
JSON line is printed: {"prepare": STATUS, "uploads": {NAME: STATUS}}.
"""

import hashlib
import http.client
import json
import ssl
import sys
import urllib.parse


def main():
    host, port, cert, key, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
    context = ssl._create_unverified_context()
    context.load_cert_chain(cert, key)
    with open(cert) as pem:
        fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read())).hexdigest().upper()
    info = {"alias": "Script Phone", "version": "2.1", "deviceModel": "Python", "deviceType": "mobile",
            "fingerprint": fingerprint, "port": 53317, "protocol": "https", "download": False}

    def post(path, body, content_type):
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=120)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    for offer in spec["offers"]:
        files = {}
        for at, entry in enumerate(offer["files"]):
            data = entry.get("data", "").encode()
            meta = {"id": f"f{at}", "fileName": entry["name"], "size": len(data),
                    "fileType": entry.get("type", "application/octet-stream")}
            if "preview" in entry:
                meta["preview"] = entry["preview"]
            if entry.get("sha256") == "right":
                meta["sha256"] = hashlib.sha256(data).hexdigest()
            elif entry.get("sha256") == "wrong":
                meta["sha256"] = hashlib.sha256(data + b"!").hexdigest()
            files[f"f{at}"] = meta
        query = "?pin=" + urllib.parse.quote(offer["pin"]) if "pin" in offer else ""
        body = json.dumps({"info": info, "files": files}).encode()
        status, raw = post("/api/localsend/v2/prepare-upload" + query, body, "application/json")
        uploads = {}
        if status == 200:
            session = json.loads(raw)
            for at, entry in enumerate(offer["files"]):
                token = session["files"].get(f"f{at}")
                if token is None:
                    continue
                path = ("/api/localsend/v2/upload?sessionId=" + urllib.parse.quote(session["sessionId"])
                        + f"&fileId=f{at}&token=" + urllib.parse.quote(token))
                uploads[entry["name"]] = post(path, entry.get("data", "").encode(), "application/octet-stream")[0]
        print(json.dumps({"prepare": status, "uploads": uploads}), flush=True)


if __name__ == "__main__":
    main()
