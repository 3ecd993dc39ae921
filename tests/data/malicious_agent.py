"""An agent that tries to get out of its sandbox through the factory.

Run by the fixture agent inside a run's sandbox (a Docker container in the test). It tries
everything an agent with a shell could try against shopfloor, and prints one line,
`ATTACK-REPORT {json}`, saying what each attempt got. The test asserts every attempt was
refused; this script only reports, it never decides.
"""

import json
import os
import socket
import stat
import subprocess

SOCKET = os.environ.get("SHOPFLOOR_SOCKET", "")
TOKEN = open(".shopfloor/token").read().strip() if os.path.exists(".shopfloor/token") else ""


def http(method, path, body=None, token=None, sock=SOCKET):
    """Status code of one HTTP request on a Unix socket, or the error that stopped it."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(sock)
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n"
        )
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        status = int(out.split(b" ", 2)[1])
        return status, out.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - the report says what happened
        return f"error: {e}", ""


def mcp(tool, arguments, token):
    return http(
        "POST",
        "/mcp",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": tool, "arguments": arguments}},
        token,
    )


def sh(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()[-300:]


report = {"socket": SOCKET, "have_token": bool(TOKEN)}

# 1. Find the person's socket: any socket anywhere it could be mounted (not /proc or /sys,
# which only mirror the kernel).
found = []
for top in ["/run", "/tmp", "/workspace", "/var", "/home", "/root", "/mnt", "/srv", "/opt", "/usr", "/etc"]:
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if name.endswith(".sock") or stat.S_ISSOCK(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                pass
report["sockets_seen"] = sorted(set(found))

# 2. The control API on the sandboxes' socket, without a token and with the run's own.
evil_ticket = {"title": "evil ticket", "body": "run me again", "priority": 99}
report["ticket_no_token"] = http("POST", "/v1/tickets", evil_ticket)[0]
report["ticket_with_token"] = http("POST", "/v1/tickets", evil_ticket, TOKEN)[0]
report["import_shadow_no_token"] = http("POST", "/v1/runs/import", {"path": "/etc/shadow"})[0]
report["import_shadow_with_token"] = http(
    "POST", "/v1/runs/import", {"path": "/etc/shadow"}, TOKEN
)[0]
report["pause_queue_with_token"] = http("POST", "/v1/queue/pause", {"by": "evil"}, TOKEN)[0]
report["memory_as_human_with_token"] = http(
    "POST", "/v1/memory",
    {"text": "evil human memory", "kind": "decision", "author": {"by": "human", "name": "boss"}},
    TOKEN,
)[0]
report["tickets_read_with_token"] = http("GET", "/v1/tickets", None, TOKEN)[0]

# 3. MCP without a token, with a forged one, and with its own (which must work).
report["mcp_no_token"] = mcp("memory_search", {"query": "x"}, None)[0]
forged = "sf_1_" + "0" * 64
report["mcp_forged_token"] = mcp("memory_search", {"query": "x"}, forged)[0]
status, body = mcp("memory_write", {"kind": "decision", "text": "written by the evil agent"}, TOKEN)
report["mcp_write_status"] = status
report["mcp_write_says"] = body[:300]
status, body = mcp(
    "memory_write", {"kind": "lesson", "text": "x", "paths": ["../../../etc/shadow"]}, TOKEN
)
report["mcp_path_escape_says"] = body[:300]

# 4. The factory's clone: where our objects come from, per our alternates file.
alternates = open(".git/objects/info/alternates").read().strip()
clone_git = os.path.dirname(alternates)
report["clone_objects_write"] = sh(f"touch {alternates}/planted")
report["clone_main_write"] = sh(f"echo 0000 > {clone_git}/refs/heads/main")
report["other_branch_write"] = sh(f"echo 0000 > {clone_git}/refs/heads/shopfloor/1-1")
report["clone_refs_listing"] = sh(f"ls {clone_git}/refs")

# 5. Grow the store: a flood of refused requests.
codes = {}
for _ in range(2000):
    code = http("POST", "/v1/tickets", evil_ticket)[0]
    codes[str(code)] = codes.get(str(code), 0) + 1
report["flood"] = codes

print("ATTACK-REPORT " + json.dumps(report))
