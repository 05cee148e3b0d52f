"""The review page mounted inside an ASGI app (FastAPI) behind the app's own login: tenant
scoping, the CSRF rule, role checks and the refusals, over httpx's ASGI transport."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

import synapsor_runner as sr
from synapsor_runner.review import Reviewer, ReviewApp
from conftest import ACME, GLOBEX, run

XSS = "<img src=x onerror=alert(1)>"
USERS = {
    "acme-lead": Reviewer("lena", ("billing_lead",), "acme"),
    "acme-agent": Reviewer("carol", (), "acme"),
    "globex-lead": Reviewer("gina", ("billing_lead",), "globex"),
}


def who(scope):
    key = dict(scope["headers"]).get(b"x-user", b"").decode()
    return USERS.get(key)


def test_review_screens_mounted_in_fastapi_follow_the_apps_login(billing_db):
    async def main():
        runner = await sr.Runner.open(billing_db.config, ledger=billing_db.ledger)
        mine = await runner.propose("billing.propose_late_fee_waiver",
                                    {"invoice_id": "INV-3001", "reason": XSS}, context=ACME)
        theirs = await runner.propose("billing.propose_late_fee_waiver",
                                      {"invoice_id": "INV-9001", "reason": "globex's"}, context=GLOBEX)
        app = FastAPI()
        app.mount("/review", ReviewApp(lambda: runner, who))
        as_ = lambda user: {"x-user": user}  # noqa: E731
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as c:
            assert (await c.get("/review/api/proposals")).status_code == 401, "no login, no review"
            redirect = await c.get("/review", headers=as_("acme-lead"))
            assert redirect.status_code == 307 and redirect.headers["location"].endswith("/review/")
            page = await c.get("/review/", headers=as_("acme-lead"))
            assert page.status_code == 200 and "<title>Synapsor Runner review</title>" in page.text
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-content-type-options"] == "nosniff"
            assert (await c.get("/review/app.js", headers=as_("acme-lead"))).headers["content-type"].startswith("text/javascript")

            async def listed(user):
                r = await c.get("/review/api/proposals", headers=as_(user))
                return [p["proposal_id"] for p in r.json()["proposals"]]

            assert mine["proposal_id"] in await listed("acme-lead")
            assert theirs["proposal_id"] not in await listed("acme-lead")
            assert await listed("globex-lead") == [theirs["proposal_id"]]
            other = await c.get(f"/review/api/proposals/{mine['proposal_id']}", headers=as_("globex-lead"))
            assert other.status_code == 404, "another tenant's proposal looks missing"
            story = (await c.get(f"/review/api/proposals/{mine['proposal_id']}", headers=as_("acme-lead"))).json()
            assert story["patch"]["waiver_reason"] == XSS
            assert story["approval"]["required_role"] == "billing_lead"

            approve = f"/review/api/proposals/{mine['proposal_id']}/approve"
            assert (await c.post(approve, json={}, headers=as_("acme-lead"))).status_code == 403, "no CSRF token"
            csrf = (await c.get("/review/api/session", headers=as_("acme-agent"))).json()["csrf"]
            refused = await c.post(approve, json={}, headers={**as_("acme-agent"), "x-synapsor-csrf": csrf})
            assert (refused.status_code, refused.json()["code"]) == (403, "APPROVER_ROLE_MISSING")
            reject = f"/review/api/proposals/{mine['proposal_id']}/reject"
            no_reason = await c.post(reject, json={}, headers={**as_("acme-lead"), "x-synapsor-csrf": csrf})
            assert (no_reason.status_code, no_reason.json()["code"]) == (400, "REASON_REQUIRED")
            big = await c.post(reject, content=b"{" + b" " * 70_000 + b"}",
                               headers={**as_("acme-lead"), "x-synapsor-csrf": csrf, "content-type": "application/json"})
            assert big.status_code == 413
            ok = await c.post(approve, json={}, headers={**as_("acme-lead"), "x-synapsor-csrf": csrf})
            assert ok.status_code == 200 and ok.json()["proposal"]["state"] == "approved", ok.text
        replay = await runner.replay(mine["proposal_id"])
        approvals = [e for e in replay["events"] if e["kind"] == "proposal_approved"]
        assert [e["actor"] for e in approvals] == ["lena"]
        await runner.close()

    run(main())
