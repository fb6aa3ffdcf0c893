"""Drive oerhub's REST API as JupyterHub's docs show ("Using JupyterHub's REST API"), with requests.

Usage: JUPYTERHUB_API_TOKEN=... python drive_api.py HUB_API_URL USERNAME
Prints one JSON line per step; exits non-zero on the first unexpected answer.
"""
import json
import os
import sys
import time

import requests

api_url = sys.argv[1]
name = sys.argv[2]
token = os.environ["JUPYTERHUB_API_TOKEN"]
session = requests.Session()
session.headers["Authorization"] = f"token {token}"


def step(what, **fields):
    print(json.dumps({"step": what, **fields}), flush=True)


r = session.get(api_url + "/")
r.raise_for_status()
step("version", version=r.json()["version"])

r = session.get(api_url + "/users")
r.raise_for_status()
step("users", names=[u["name"] for u in r.json()])

r = session.post(api_url + f"/users/{name}/server")
r.raise_for_status()
step("start", status=r.status_code)

# Wait for the server to be ready, as the docs' example does.
deadline = time.monotonic() + 90
while True:
    r = session.get(api_url + f"/users/{name}")
    r.raise_for_status()
    user_model = r.json()
    server = user_model["servers"].get("", {})
    if server.get("ready"):
        break
    if not server.get("pending") and time.monotonic() > deadline - 85:
        # Neither ready nor pending a few seconds in: the start failed.
        step("failed", model=user_model)
        sys.exit(1)
    if time.monotonic() > deadline:
        step("timeout", model=user_model)
        sys.exit(1)
    time.sleep(0.5)
step("ready", url=server["url"], server=user_model["server"], started=server["started"])

r = session.get(api_url + "/users", params={"state": "ready"})
r.raise_for_status()
step("ready-users", names=[u["name"] for u in r.json()])

r = session.delete(api_url + f"/users/{name}/server")
r.raise_for_status()
step("stop", status=r.status_code)

r = session.get(api_url + f"/users/{name}")
r.raise_for_status()
step("after", server=r.json()["server"], servers=r.json()["servers"])
